package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"strings"

	"github.com/rebookhq/rebook/internal/config"
)

// Teams app manifest: the schema version and colour Rebook ships with.
const (
	manifestSchema  = "https://developer.microsoft.com/json-schemas/teams/v1.19/MicrosoftTeams.schema.json"
	manifestVersion = "1.19"
	nhsBlue         = "#005EB8"
)

// runTeamsManifest is `starter teams-manifest`: the app package that puts
// Rebook's bot in a trust's Teams. The bot's id is TEAMS_APP_ID; the
// developer's pages default to the trust's public URL.
func runTeamsManifest(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("teams-manifest", flag.ContinueOnError)
	out := fs.String("out", "rebook-teams.zip", "where to write the app package")
	name := fs.String("developer", "", "the trust, as Teams shows it (required)")
	site := fs.String("website", "", "the trust's website (default REBOOK_PUBLIC_URL)")
	privacy := fs.String("privacy", "", "the privacy notice's URL (default: --website/privacy)")
	terms := fs.String("terms", "", "the terms of use's URL (default: --website/terms)")
	version := fs.String("version", "1.0.0", "the package's version: raise it for each upload")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.FromEnv(config.TeamsAppID)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return errors.New("teams-manifest: --developer names the trust (e.g. --developer \"Example NHS Foundation Trust\")")
	}
	if *site == "" {
		*site = cfg.PublicURL
	}
	if !strings.HasPrefix(*site, "https://") {
		return fmt.Errorf("teams-manifest: the website must be an https URL (--website, or REBOOK_PUBLIC_URL), not %q", *site)
	}
	base := strings.TrimRight(*site, "/")
	if *privacy == "" {
		*privacy = base + "/privacy"
	}
	if *terms == "" {
		*terms = base + "/terms"
	}
	pkg, err := TeamsPackage(TeamsApp{AppID: cfg.TeamsAppID, Developer: *name, Website: base, Privacy: *privacy, Terms: *terms, Version: *version})
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, pkg, 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s: upload it in the Teams admin centre (Teams apps → Manage apps → Upload), then add Rebook to each team whose channel a rule names\n", *out)
	return nil
}

// TeamsApp is what the manifest says of the trust's Rebook.
type TeamsApp struct {
	AppID, Developer, Website, Privacy, Terms, Version string
}

// TeamsPackage zips manifest.json and the two icons at the package's root.
func TeamsPackage(a TeamsApp) ([]byte, error) {
	manifest := map[string]any{
		"$schema": manifestSchema, "manifestVersion": manifestVersion, "version": a.Version, "id": a.AppID,
		"developer": map[string]string{"name": a.Developer, "websiteUrl": a.Website, "privacyUrl": a.Privacy, "termsOfUseUrl": a.Terms},
		"name":      map[string]string{"short": "Rebook", "full": "Rebook: patients' appointment requests"},
		"description": map[string]string{
			"short": "Patients' requests to cancel or change appointments, for your team",
			"full": "Rebook posts each patient's request (from Patients Know Best) to cancel or change an appointment as a card in the team's channel. " +
				"Staff claim it, mark it done or close it with a reason; Rebook closes it itself when the hospital's system shows the change. " +
				"Cards carry no patient identifier: details are on the trust's Rebook pages, behind sign-in.",
		},
		"icons":        map[string]string{"color": "color.png", "outline": "outline.png"},
		"accentColor":  nhsBlue,
		"bots":         []map[string]any{{"botId": a.AppID, "scopes": []string{"team"}, "isNotificationOnly": false, "supportsFiles": false}},
		"validDomains": []string{},
	}
	mj, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data func() ([]byte, error)
	}{
		{"manifest.json", func() ([]byte, error) { return mj, nil }},
		{"color.png", func() ([]byte, error) { return icon(192, false) }},
		{"outline.png", func() ([]byte, error) { return icon(32, true) }},
	} {
		b, err := f.data()
		if err != nil {
			return nil, err
		}
		w, err := zw.Create(f.name)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(b); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// icon draws Rebook's mark, a calendar page with a tick: on NHS blue
// (color, 192 px), or as a white outline on transparent (outline, 32 px),
// as Teams asks.
func icon(size int, outline bool) ([]byte, error) {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	blue := color.NRGBA{0x00, 0x5E, 0xB8, 0xFF}
	white := color.NRGBA{0xFF, 0xFF, 0xFF, 0xFF}
	if !outline {
		fill(img, 0, 0, size, size, blue)
	}
	u := size / 16
	// The page: a frame, and its binding.
	stroke := max(u, 1)
	frame(img, 3*u, 4*u, 13*u, 13*u, stroke, white)
	fill(img, 3*u, 4*u, 13*u, 6*u, white)
	// The tick.
	for i := range 3 * u {
		fill(img, 5*u+i, 9*u+i, 5*u+i+stroke, 9*u+i+stroke, white)
	}
	for i := range 4 * u {
		fill(img, 8*u+i, 12*u-i-stroke, 8*u+i+stroke, 12*u-i, white)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func fill(img *image.NRGBA, x0, y0, x1, y1 int, c color.NRGBA) {
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			img.SetNRGBA(x, y, c)
		}
	}
}

func frame(img *image.NRGBA, x0, y0, x1, y1, w int, c color.NRGBA) {
	fill(img, x0, y0, x1, y0+w, c)
	fill(img, x0, y1-w, x1, y1, c)
	fill(img, x0, y0, x0+w, y1, c)
	fill(img, x1-w, y0, x1, y1, c)
}
