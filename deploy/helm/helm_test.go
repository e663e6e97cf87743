// Package helm holds the test of the Helm chart in deploy/helm/rebook.
package helm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// render runs the pinned helm (tools/helm) over the chart with values.
func render(t *testing.T, root string, values ...string) string {
	t.Helper()
	args := []string{"-C", filepath.Join(root, "tools/helm"), "tool", "helm", "template", "rebook", filepath.Join(root, "deploy/helm/rebook")}
	for _, v := range values {
		args = append(args, "-f", v)
	}
	var out, stderr bytes.Buffer
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	require.NoError(t, cmd.Run(), "helm template: %s", stderr.String())
	return out.String()
}

// kubecheck decodes every rendered manifest strictly into its Kubernetes
// API type (tools/helm/kubecheck): an unknown kind or field fails.
func kubecheck(t *testing.T, root, manifests string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("go", "-C", filepath.Join(root, "tools/helm"), "run", "./kubecheck")
	cmd.Stdin, cmd.Stderr = strings.NewReader(manifests), &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "kubecheck: %s", stderr.String())
	t.Log(strings.TrimSpace(string(out)))
}

// The chart renders with its defaults and with each example's values
// (Temporal Cloud with an API key; a self-hosted cluster with mTLS), and
// every manifest decodes strictly into the Kubernetes API. It makes what a
// platform team expects and carries no secret value.
func TestHelmChartRendersStrictly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the pinned helm")
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	examples, err := filepath.Glob(filepath.Join(root, "deploy/helm/examples/*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, examples)
	sets := [][]string{nil}
	for _, e := range examples {
		sets = append(sets, []string{e})
	}
	for _, values := range sets {
		out := render(t, root, values...)
		kubecheck(t, root, out)
		for _, want := range []string{"name: rebook-worker", "name: rebook-frontdoor", "kind: PodDisruptionBudget", "kind: NetworkPolicy",
			`"helm.sh/hook": pre-install,pre-upgrade`, `args: ["migrate", "--login", "rebook_service"]`, "path: /healthz", "secretKeyRef:"} {
			assert.Contains(t, out, want, "values %v", values)
		}
		assert.NotContains(t, out, "kind: Secret", "secrets come from existing Secrets, never the chart")
	}
	cloud := render(t, root, filepath.Join(root, "deploy/helm/examples/temporal-cloud.yaml"))
	assert.Contains(t, cloud, "name: TEMPORAL_API_KEY")
	mtls := render(t, root, filepath.Join(root, "deploy/helm/examples/self-hosted-mtls.yaml"))
	assert.Contains(t, mtls, "secretName: rebook-temporal-client")
	assert.Contains(t, mtls, "replicas: 3")
	assert.Contains(t, mtls, "name: REBOOK_BUILD_ID")
	assert.NotContains(t, render(t, root), "REBOOK_BUILD_ID", "unversioned unless a build is named")
	raw, err := os.ReadFile(filepath.Join(root, "deploy/helm/rebook/values.yaml"))
	require.NoError(t, err)
	for _, secret := range []string{"xoxb-", "local-signing-secret", "rebook-local-secret"} {
		assert.NotContains(t, string(raw), secret)
	}
}
