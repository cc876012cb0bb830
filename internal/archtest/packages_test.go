package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// moduleRoot is the directory of go.mod, above this package's.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// goDirs maps every directory of the module holding Go files (as its path
// inside the module) to those files, tests excluded. It walks the tree
// rather than asking go list, so that a directory go list would skip (all
// files behind a build tag, say) is not missed. Like the go command, it
// skips testdata and directories whose names start with . or _.
func goDirs(t *testing.T) map[string][]string {
	t.Helper()
	root := moduleRoot(t)
	dirs := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if _, seen := dirs[rel]; !seen {
			dirs[rel] = nil // a directory of tests alone is still a package
		}
		if !strings.HasSuffix(name, "_test.go") {
			dirs[rel] = append(dirs[rel], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// A package absent from the layout table has no rules; give it its row.
func TestEveryGoDirectoryIsListed(t *testing.T) {
	dirs := goDirs(t)
	for _, dir := range sortedKeys(dirs) {
		if _, ok := layout[dir]; !ok {
			t.Errorf("%s holds Go files but has no row in layout_test.go: give it the module packages it may import", dir)
		}
	}
	for _, name := range sortedKeys(layout) {
		if _, ok := dirs[name]; !ok {
			t.Errorf("layout_test.go has a row for %s, which holds no Go files", name)
		}
	}
}

// Every package says what it is for, in a doc comment on its package
// clause (go doc and a newcomer read it first).
func TestEveryPackageHasADocComment(t *testing.T) {
	dirs := goDirs(t)
	for _, dir := range sortedKeys(dirs) {
		files := dirs[dir]
		if len(files) == 0 {
			continue // tests alone: no package for others to read about
		}
		documented := false
		for _, path := range files {
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			documented = documented || f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != ""
		}
		if !documented {
			t.Errorf("package %s has no doc comment: add one (in doc.go if its files are generated)", dir)
		}
	}
}
