package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/metrics"
	"github.com/rebookhq/rebook/internal/store"
)

// Case 13: Temporal's TLS and API key come from the environment.
func TestHazardTemporalTLSFromTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rebook-worker"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	cert, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	require.NoError(t, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	get := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

	cfg, err := config.Load(get(map[string]string{config.TemporalTLSCert: cert, config.TemporalTLSKey: keyFile, config.TemporalTLSCA: cert}))
	require.NoError(t, err)
	tc, err := app.TemporalTLS(cfg)
	require.NoError(t, err)
	require.NotNil(t, tc)
	assert.Len(t, tc.Certificates, 1, "mTLS client certificate")
	assert.NotNil(t, tc.RootCAs)

	cfg, err = config.Load(get(map[string]string{config.TemporalAPIKey: "key"}))
	require.NoError(t, err)
	tc, err = app.TemporalTLS(cfg)
	require.NoError(t, err)
	assert.NotNil(t, tc, "an API key alone (Temporal Cloud) still gets TLS")

	cfg, err = config.Load(get(map[string]string{}))
	require.NoError(t, err)
	tc, err = app.TemporalTLS(cfg)
	require.NoError(t, err)
	assert.Nil(t, tc, "a local dev server stays plain")

	_, err = config.Load(get(map[string]string{config.TemporalTLSCert: cert}))
	assert.ErrorContains(t, err, config.TemporalTLSCert)
	_, err = config.Load(get(map[string]string{config.TemporalTLSCA: filepath.Join(dir, "missing.pem")}))
	assert.ErrorContains(t, err, "TEMPORAL_TLS_CA names a file that cannot be read")
}

// Issue 23, finding 9: with REBOOK_METRICS_ADDR set, the public front
// door serves no /metrics; the worker's and the scraper's own address
// need REBOOK_METRICS_TOKEN when it is set.
func TestSecurityMetricsLeaveThePublicAddress(t *testing.T) {
	m := metrics.New(slog.New(slog.DiscardHandler))
	assert.NotNil(t, app.PublicMetrics(config.Config{}, m), "by default on the front door")
	assert.Nil(t, app.PublicMetrics(config.Config{MetricsAddr: "127.0.0.1:9100"}, m), "moved to its own address")
	cfg := config.Config{MetricsAddr: "127.0.0.1:9100", MetricsToken: "scrape-token-0123456789"}
	rec := httptest.NewRecorder()
	app.MetricsHTTP(cfg, m).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+cfg.MetricsToken)
	rec = httptest.NewRecorder()
	app.MetricsHTTP(cfg, m).ServeHTTP(rec, req)
	assert.Equal(t, http.StatusOK, rec.Code)
	_, err := config.Load(func(k string) string {
		if k == config.MetricsToken {
			return "short"
		}
		return ""
	})
	assert.ErrorContains(t, err, config.MetricsToken)
}

// Finding 16: the worker and serve never change the schema unasked: on a
// database behind this release they stop with ErrSchemaBehind, before
// anything else, and leave it as it was.
func TestSecurityProcessesNeverMigrateUnasked(t *testing.T) {
	ctx := context.Background()
	dbURL := testdb.URL(t)
	require.NoError(t, store.EnsureDatabase(ctx, dbURL))
	cfg := config.Config{DatabaseURL: dbURL, TemporalAddress: "127.0.0.1:1", TemporalNamespace: "default"}
	_, err := app.Connect(ctx, cfg, slog.New(slog.DiscardHandler), false)
	require.ErrorIs(t, err, store.ErrSchemaBehind)
	assert.Contains(t, err.Error(), "starter migrate")
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer func() { _ = conn.Close(ctx) }()
	var tables int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&tables))
	assert.Zero(t, tables, "nothing was created")
}
