package devserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/rebookhq/rebook/internal/app"
)

// FreshNamespace makes a namespace of its own (prefix and random hex) on a
// running Temporal, such as make cluster's, for one test or chaos run,
// with Rebook's search attributes, once every service knows it.
func FreshNamespace(ctx context.Context, addr, prefix string) (string, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := prefix + hex.EncodeToString(b)
	c, err := client.Dial(client.Options{HostPort: addr, Namespace: ns})
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := app.EnsureNamespace(ctx, c, ns, 24*time.Hour); err != nil {
		return "", err
	}
	return ns, app.RegisterSearchAttributesWhenReady(ctx, c, ns)
}
