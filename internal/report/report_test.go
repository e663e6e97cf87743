package report_test

import (
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/report"
	"github.com/rebookhq/rebook/internal/store"
)

// Issue 23, finding 13: a team or specialty whose name a spreadsheet
// would run as a formula is written as text; the counts are untouched.
func TestSecurityCSVCellsAreNeutralised(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rows := []store.ReportRow{
		{Period: day, Key: `=HYPERLINK("https://evil.example","Cardiology")`, Requests: 3},
		{Period: day, Key: "+441234", Requests: 1},
		{Period: day, Key: "-2+3", Requests: 1},
		{Period: day, Key: "@SUM(A1)", Requests: 1},
		{Period: day, Key: "\tDermatology", Requests: 1},
		{Period: day, Key: "Respiratory Medicine", Requests: 2},
	}
	var b strings.Builder
	require.NoError(t, report.CSV(&b, "specialty", rows))
	recs, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, len(rows)+1)
	assert.Equal(t, report.Header("specialty"), recs[0])
	for i, r := range rows {
		got := recs[i+1][1]
		if r.Key == "Respiratory Medicine" {
			assert.Equal(t, r.Key, got)
			continue
		}
		assert.Equal(t, "'"+r.Key, got, "written as text")
	}
	assert.Equal(t, "3", recs[1][2], "counts untouched")
}
