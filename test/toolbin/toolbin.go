// Package toolbin finds the pinned command-line tools the tests run (helm, promtool), building them from
// their Go modules into bin/ with hack/tool.sh when they are missing: a missing tool is built, never skipped.
package toolbin

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/certops/intune-cert-operator/internal/testutil"
)

var (
	mu    sync.Mutex
	paths = map[string]string{}
)

// Path is the path of tool (helm, promtool or kustomize), built by hack/tool.sh if bin/ lacks it.
func Path(tool string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if p, ok := paths[tool]; ok {
		return p, nil
	}
	cmd := exec.Command(filepath.Join(testutil.RepoRoot(), "hack", "tool.sh"), tool)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/tool.sh %s: %v\n%s", tool, err, stderr.String())
	}
	p := strings.TrimSpace(stdout.String())
	paths[tool] = p
	return p, nil
}
