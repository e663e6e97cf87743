package devserver_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/rebookhq/rebook/internal/dev/devserver"
)

func TestStartPersistsAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal dev server")
	}
	ctx := context.Background()
	wd, _ := os.Getwd()
	root, err := devserver.RepoRoot(wd)
	require.NoError(t, err)
	bin, err := devserver.Binary(ctx, root)
	require.NoError(t, err)
	db := filepath.Join(t.TempDir(), "temporal.db")

	srv, err := devserver.Start(ctx, devserver.Options{Binary: bin, UIPort: -1, DBFile: db, SearchAttributes: map[string]string{"RequestType": "Keyword"}})
	require.NoError(t, err)
	c, err := client.Dial(client.Options{HostPort: srv.Address})
	require.NoError(t, err)
	_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
	require.NoError(t, err)
	c.Close()

	// A second server cannot take the same port: the error says why.
	_, port, _ := splitPort(srv.Address)
	_, err = devserver.Start(ctx, devserver.Options{Binary: bin, Port: port, UIPort: -1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "in use")

	srv.Stop()
	select {
	case <-srv.Exited():
	case <-time.After(time.Second):
		t.Fatal("server still running after Stop")
	}
	_, err = os.Stat(db)
	assert.NoError(t, err, "state persisted to the SQLite file")
}
