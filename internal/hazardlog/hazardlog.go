// Package hazardlog reads the clinical safety hazard log
// (docs/clinical-safety.md) and checks its evidence: every hazard names
// at least one test, and every test it names exists in the package it
// gives. make test runs the check, so a hazard cannot lose its evidence
// silently when a test is renamed or removed.
package hazardlog

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Hazard is one hazard of the log and the tests it names.
type Hazard struct {
	ID, Title string
	Tests     []Test
}

// Test is a test named as evidence: its function and its package's
// directory in the repository.
type Test struct{ Name, Package string }

var (
	heading  = regexp.MustCompile(`^### (H\d+)\. (.+)$`)
	evidence = regexp.MustCompile("`(Test\\w+)` in `([\\w./-]+)`")
)

// Parse reads the hazards of a log: each "### Hn. Title" section, with
// the tests named as "`TestName` in `package/path`" in its Evidence item.
func Parse(doc []byte) []Hazard {
	var out []Hazard
	inEvidence := false
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		line := sc.Text()
		if m := heading.FindStringSubmatch(line); m != nil {
			out = append(out, Hazard{ID: m[1], Title: m[2]})
			inEvidence = false
			continue
		}
		if len(out) == 0 {
			continue
		}
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "- Evidence:"):
			inEvidence = true
		case strings.HasPrefix(trimmed, "- "), strings.HasPrefix(line, "#"):
			inEvidence = false
		}
		if !inEvidence {
			continue
		}
		h := &out[len(out)-1]
		for _, m := range evidence.FindAllStringSubmatch(line, -1) {
			h.Tests = append(h.Tests, Test{Name: m[1], Package: m[2]})
		}
	}
	return out
}

// Check says what is wrong with the log's evidence, with root as the
// repository's root: a log with no hazards, a hazard with no test, a test
// that its package does not define.
func Check(doc []byte, root string) []string {
	hazards := Parse(doc)
	if len(hazards) == 0 {
		return []string{"the hazard log has no hazards (### H1. …)"}
	}
	var problems []string
	for _, h := range hazards {
		if len(h.Tests) == 0 {
			problems = append(problems, fmt.Sprintf("%s (%s) names no test as evidence", h.ID, h.Title))
		}
		for _, t := range h.Tests {
			ok, err := defines(filepath.Join(root, filepath.FromSlash(t.Package)), t.Name)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %s in %s: %v", h.ID, t.Name, t.Package, err))
			} else if !ok {
				problems = append(problems, fmt.Sprintf("%s: %s does not exist in %s", h.ID, t.Name, t.Package))
			}
		}
	}
	return problems
}

// defines says whether a _test.go file in dir declares func name(.
func defines(dir, name string) (bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		return false, err
	}
	if len(files) == 0 {
		return false, fmt.Errorf("no test files in %s", dir)
	}
	decl := []byte("\nfunc " + name + "(")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return false, err
		}
		if bytes.Contains(b, decl) {
			return true, nil
		}
	}
	return false, nil
}
