package archcheck

import (
	"bufio"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sextant-dns/sextant/"

// documented reads the package table of ARCHITECTURE.md: package -> the
// module packages it imports, or nil for "everything".
func documented(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("../../ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table := map[string][]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = strings.HasPrefix(line, "## Packages")
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cols := strings.Split(strings.Trim(line, "|"), " | ")
		pkg := strings.Trim(strings.TrimSpace(cols[0]), "`")
		imports := strings.TrimSpace(cols[len(cols)-1])
		switch imports {
		case "everything":
			table[pkg] = nil
			continue
		case "—", "-":
			imports = ""
		}
		deps := []string{}
		for _, d := range strings.Split(imports, ",") {
			d, _, _ = strings.Cut(strings.TrimSpace(d), " (") // "transport (Handler only)"
			if d != "" {
				deps = append(deps, d)
			}
		}
		slices.Sort(deps)
		table[pkg] = deps
	}
	if len(table) == 0 {
		t.Fatal("no package table in ARCHITECTURE.md")
	}
	return table
}

// actual asks go list for the module's packages and their module imports.
// Benchmark programs and internal test helpers are not architecture.
func actual(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Imports ","}}`, "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	got := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, imports, _ := strings.Cut(line, "|")
		pkg := strings.TrimPrefix(path, module)
		if pkg == "bench" || strings.HasPrefix(pkg, "bench/") || strings.Contains(pkg, "/internal/") {
			continue
		}
		deps := []string{}
		for _, imp := range strings.Split(imports, ",") {
			if strings.HasPrefix(imp, module) {
				deps = append(deps, strings.TrimPrefix(imp, module))
			}
		}
		slices.Sort(deps)
		got[pkg] = deps
	}
	return got
}

// TestImportTableMatchesGoList: each package is in the table, each row is a
// package, and its imports are the ones the table says.
func TestImportTableMatchesGoList(t *testing.T) {
	doc, real := documented(t), actual(t)
	for pkg, deps := range real {
		want, ok := doc[pkg]
		switch {
		case !ok:
			t.Errorf("package %s is not in ARCHITECTURE.md's table (it imports %v)", pkg, deps)
		case want != nil && !slices.Equal(want, deps):
			t.Errorf("ARCHITECTURE.md says %s imports %v; go list says %v", pkg, want, deps)
		}
	}
	for pkg := range doc {
		if _, ok := real[pkg]; !ok {
			t.Errorf("ARCHITECTURE.md lists %s, which is not a package", pkg)
		}
	}
}
