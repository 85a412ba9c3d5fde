// Package runbooks checks docs/runbooks: a page for every reason the operator puts on a Ready condition, in
// the shape operators expect, and README links that land on them.
package runbooks

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/certops/intune-cert-operator/internal/testutil"
)

// Reasons that never reach a condition of the operator: only the Graph emulator's connector decrypts.
var notConditionReasons = map[string]bool{"DecryptionFailed": true}

func runbookDir() string { return filepath.Join(testutil.RepoRoot(), "docs", "runbooks") }

func TestEveryReasonHasARunbook(t *testing.T) {
	index, err := os.ReadFile(filepath.Join(runbookDir(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for reason, where := range testutil.ReasonConstants(t) {
		if notConditionReasons[reason] {
			continue
		}
		page := filepath.Join(runbookDir(), reason+".md")
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Errorf("reason %s (%s) has no runbook: write docs/runbooks/%s.md (what it means, what to check, how to fix)", reason, where, reason)
			continue
		}
		text := string(raw)
		if !strings.HasPrefix(text, "# "+reason+"\n") {
			t.Errorf("docs/runbooks/%s.md does not start with the heading \"# %s\"", reason, reason)
		}
		for _, section := range []string{"## What it means", "## What to check", "## How to fix"} {
			if !strings.Contains(text, "\n"+section+"\n") {
				t.Errorf("docs/runbooks/%s.md has no section %q", reason, section)
			}
		}
		if !strings.Contains(string(index), "]("+reason+".md)") {
			t.Errorf("docs/runbooks/README.md does not link %s.md", reason)
		}
	}
}

// Every relative link of the README and of the runbooks to a runbook page lands on a file.
func TestRunbookLinksResolve(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)#:]+\.md)(?:#[^)]*)?\)`)
	files, _ := filepath.Glob(filepath.Join(runbookDir(), "*.md"))
	files = append(files, filepath.Join(testutil.RepoRoot(), "README.md"))
	linked := 0
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(raw), -1) {
			target := filepath.Join(filepath.Dir(file), m[1])
			if !strings.Contains(target, filepath.Join("docs", "runbooks")) {
				continue
			}
			linked++
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s links %s, which does not exist", filepath.Base(file), m[1])
			}
		}
	}
	if linked == 0 {
		t.Error("no links to docs/runbooks found")
	}
}

// The README's table of Argo CD statuses names reasons; each is a link to its runbook.
func TestReadmeReasonTableLinksEveryReason(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	reasons := testutil.ReasonConstants(t)
	rows := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "| Progressing ") && !strings.HasPrefix(line, "| Degraded ") {
			continue
		}
		rows++
		for _, m := range regexp.MustCompile("(\\[)?`([A-Z][A-Za-z]+)`(\\]\\(docs/runbooks/([A-Za-z]+)\\.md\\))?").FindAllStringSubmatch(line, -1) {
			reason := m[2]
			if _, ok := reasons[reason]; !ok {
				continue // a kind or a status, not a reason
			}
			if m[3] == "" || m[4] != reason {
				t.Errorf("README: reason %s in the Argo CD table is not linked to docs/runbooks/%s.md", reason, reason)
			}
		}
	}
	if rows != 2 {
		t.Errorf("found %d rows (Progressing, Degraded) of the README's Argo CD table, want 2", rows)
	}
}
