// Command kubecheck reads rendered Kubernetes manifests (helm template's
// output) on stdin and decodes each strictly into its Kubernetes API type,
// failing on an unknown kind or an unknown field: what a typo in a chart
// would otherwise leave for the cluster to ignore or refuse.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

var kinds = map[string]func() any{
	"apps/v1/Deployment":                 func() any { return &appsv1.Deployment{} },
	"v1/Service":                         func() any { return &corev1.Service{} },
	"policy/v1/PodDisruptionBudget":      func() any { return &policyv1.PodDisruptionBudget{} },
	"batch/v1/Job":                       func() any { return &batchv1.Job{} },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },
}

func main() {
	n, err := check(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubecheck:", err)
		os.Exit(1)
	}
	fmt.Printf("kubecheck: %d manifests decode strictly\n", n)
}

func check(r io.Reader) (int, error) {
	raw, err := io.ReadAll(bufio.NewReader(r))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, doc := range bytes.Split(raw, []byte("\n---")) {
		src := strings.TrimSpace(stripComments(string(doc)))
		if src == "" {
			continue
		}
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(src), &head); err != nil {
			return n, err
		}
		key := head.APIVersion + "/" + head.Kind
		mk, ok := kinds[key]
		if !ok {
			return n, fmt.Errorf("manifest %d: %s is not a kind this chart should make", n+1, key)
		}
		if err := yaml.UnmarshalStrict([]byte(src), mk()); err != nil {
			return n, fmt.Errorf("manifest %d (%s): %w", n+1, key, err)
		}
		n++
	}
	if n == 0 {
		return 0, errors.New("no manifests")
	}
	return n, nil
}

// stripComments drops helm template's "# Source:" lines and the chart's
// own comments, which are not part of any object.
func stripComments(doc string) string {
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
