package report

import (
	"fmt"
	"image/color"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/store"
)

// Each specialty gets its own colour, from a scheme readers with colour-
// vision deficiencies can tell apart, and segments are outlined in white.
func TestChartColoursEachSeries(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var rows []store.ReportRow
	names := []string{"Cardiology", "Dermatology", "ENT", "Gastroenterology", "Neurology", "Ophthalmology", "Rheumatology", "Urology", "unknown"}
	for i, k := range names {
		rows = append(rows, store.ReportRow{Period: day, Key: k, Requests: i + 1})
	}
	svg, err := Chart("specialty", rows)
	require.NoError(t, err)
	fills := map[string]bool{}
	for _, m := range regexp.MustCompile(`fill:(#[0-9A-Fa-f]{6})`).FindAllStringSubmatch(string(svg), -1) {
		fills[strings.ToUpper(m[1])] = true
	}
	for i := range names {
		r, g, b, _ := palette[i].RGBA()
		hex := fmt.Sprintf("#%02X%02X%02X", r>>8, g>>8, b>>8)
		assert.True(t, fills[hex], "series %d (%s) is drawn in %s", i, names[i], hex)
	}
	assert.Contains(t, string(svg), "stroke:#FFFFFF", "segments are outlined in white")
	seen := map[color.Color]bool{}
	for _, c := range palette {
		assert.False(t, seen[c], "every colour once")
		seen[c] = true
	}
}
