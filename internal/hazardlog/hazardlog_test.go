package hazardlog_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/hazardlog"
)

const root = "../.."

// Every hazard in docs/clinical-safety.md names at least one test, and
// each named test exists in its package. The tests themselves run in the
// same make test.
func TestHazardLogNamesTestsThatExist(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(root, "docs", "clinical-safety.md"))
	require.NoError(t, err)
	hazards := hazardlog.Parse(doc)
	require.GreaterOrEqual(t, len(hazards), 11, "the hazards issue 12 lists, at least")
	for _, h := range hazards {
		t.Logf("%s %s: %d tests", h.ID, h.Title, len(h.Tests))
	}
	assert.Empty(t, hazardlog.Check(doc, root))
}

// The check fails a hazard with no evidence, a test that was renamed, and
// a package that does not exist.
func TestHazardLogCheckNamesEachGap(t *testing.T) {
	doc := []byte("# Log\n\n### H1. Named\n\n- Cause: x\n- Evidence: `TestHazardLogNamesTestsThatExist` in `internal/hazardlog`.\n\n" +
		"### H2. Bare\n\n- Cause: y\n- Evidence: none yet.\n\n" +
		"### H3. Renamed\n\n- Evidence: `TestNoSuchTest` in `internal/hazardlog`;\n  `TestHazardLogNamesTestsThatExist` in `internal/nowhere`.\n")
	problems := hazardlog.Check(doc, root)
	require.Len(t, problems, 3, "%v", problems)
	assert.Contains(t, problems[0], "H2 (Bare) names no test")
	assert.Contains(t, problems[1], "H3: TestNoSuchTest does not exist in internal/hazardlog")
	assert.Contains(t, problems[2], "internal/nowhere")
	assert.Equal(t, []string{"the hazard log has no hazards (### H1. …)"}, hazardlog.Check([]byte("# nothing"), root))
}
