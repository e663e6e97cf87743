package app_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/config"
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
