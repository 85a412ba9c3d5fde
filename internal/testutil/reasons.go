package testutil

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ReasonPackages are the packages whose Reason* constants end up on the operator's conditions.
var ReasonPackages = []string{"api/v1alpha1", "internal/pfx", "internal/controller", "internal/connection"}

// ReasonConstants are the string values of every constant named Reason* in ReasonPackages' non-test
// sources, each with where it is declared: what the Argo CD health script and the runbooks must know.
func ReasonConstants(t testing.TB) map[string]string {
	t.Helper()
	found := map[string]string{} // value -> where
	fset := token.NewFileSet()
	for _, pkg := range ReasonPackages {
		files, err := filepath.Glob(filepath.Join(RepoRoot(), pkg, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, file, nil, 0)
			if err != nil {
				t.Fatalf("failed to parse %s: %v", file, err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				spec, ok := n.(*ast.ValueSpec)
				if !ok {
					return true
				}
				for i, name := range spec.Names {
					if !strings.HasPrefix(name.Name, "Reason") || i >= len(spec.Values) {
						continue
					}
					if lit, ok := spec.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						value, _ := strconv.Unquote(lit.Value)
						found[value] = pkg + "." + name.Name
					}
				}
				return true
			})
		}
	}
	if len(found) == 0 {
		t.Fatal("found no Reason constants: the source layout changed, update testutil.ReasonPackages")
	}
	return found
}
