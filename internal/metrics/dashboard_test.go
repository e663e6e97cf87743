package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/metrics"
)

// The Grafana dashboard in deploy/ queries only series Rebook exports
// (or the SDK's), and shows every one of Rebook's: a renamed series
// fails here, not on a trust's wall screen.
func TestGrafanaDashboardQueriesRebooksSeries(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana/rebook.json")
	require.NoError(t, err)
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal(raw, &d))
	require.NotEmpty(t, d.Panels)
	name := regexp.MustCompile(`\b(rebook|temporal)_[a-z_]+`)
	shown := map[string]bool{}
	for _, p := range d.Panels {
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				if !strings.HasPrefix(n, "rebook_") {
					continue
				}
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")
				assert.True(t, slices.Contains(metrics.Series, base), "panel %q queries %s, which Rebook does not export", p.Title, n)
				shown[base] = true
			}
		}
	}
	for _, s := range metrics.Series {
		assert.True(t, shown[s], "no panel shows %s", s)
	}
}
