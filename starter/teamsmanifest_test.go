package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The app package a Teams admin uploads: manifest.json and two icons at
// the zip's root, the bot's id from TEAMS_APP_ID, the fields the schema
// requires within their limits, icons of the sizes Teams asks.
func TestTeamsManifestPackage(t *testing.T) {
	t.Setenv("TEAMS_APP_ID", "6b7b3b2a-2c4b-4175-8582-41c9e685c1b5")
	t.Setenv("TEAMS_APP_PASSWORD", "x")
	t.Setenv("TEAMS_TENANT_ID", "t")
	t.Setenv("REBOOK_PUBLIC_URL", "https://rebook.example.nhs.uk")
	out := filepath.Join(t.TempDir(), "rebook-teams.zip")
	require.Error(t, runTeamsManifest(context.Background(), []string{"--out", out}), "the trust must be named")
	require.NoError(t, runTeamsManifest(context.Background(), []string{"--out", out, "--developer", "Example NHS Foundation Trust"}))
	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	require.NoError(t, err)
	files := map[string][]byte{}
	for _, f := range zr.File {
		r, err := f.Open()
		require.NoError(t, err)
		files[f.Name], _ = io.ReadAll(r)
		_ = r.Close()
	}
	require.Len(t, files, 3)
	var m struct {
		ManifestVersion, Version, ID, AccentColor string
		Developer                                 map[string]string
		Name, Description                         map[string]string
		Icons                                     map[string]string
		Bots                                      []struct {
			BotID  string
			Scopes []string
		}
	}
	require.NoError(t, json.Unmarshal(files["manifest.json"], &m))
	assert.Equal(t, "6b7b3b2a-2c4b-4175-8582-41c9e685c1b5", m.ID)
	require.Len(t, m.Bots, 1)
	assert.Equal(t, m.ID, m.Bots[0].BotID)
	assert.Equal(t, []string{"team"}, m.Bots[0].Scopes)
	assert.Equal(t, "https://rebook.example.nhs.uk/privacy", m.Developer["privacyUrl"])
	assert.LessOrEqual(t, len(m.Name["short"]), 30)
	assert.LessOrEqual(t, len(m.Description["short"]), 80)
	assert.LessOrEqual(t, len(m.Description["full"]), 4000)
	assert.Regexp(t, `^#[0-9A-F]{6}$`, m.AccentColor)
	for name, size := range map[string]int{m.Icons["color"]: 192, m.Icons["outline"]: 32} {
		img, err := png.Decode(bytes.NewReader(files[name]))
		require.NoError(t, err, name)
		assert.Equal(t, size, img.Bounds().Dx(), name)
		assert.Equal(t, size, img.Bounds().Dy(), name)
	}
	outline, _ := png.Decode(bytes.NewReader(files["outline.png"]))
	_, _, _, a := outline.At(0, 0).RGBA()
	assert.Zero(t, a, "the outline icon is transparent around its mark")
}
