package console

import (
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestEveryWordInBothLanguages: each key a template or the Go code asks
// for, and each key either language has, is in both languages.
func TestEveryWordInBothLanguages(t *testing.T) {
	used := map[string]bool{}
	templateKey := regexp.MustCompile(`\.T "([a-z_.]+)"`)
	goKey := regexp.MustCompile(`(?:tr\(r, |translate\(\w+, )"([a-z_.]+)"|"((?:role|err|nav)\.[a-z_]+)"`)
	files, _ := fs.Glob(templateFS, "templates/*.html")
	for _, f := range files {
		data, _ := fs.ReadFile(templateFS, f)
		for _, m := range templateKey.FindAllStringSubmatch(string(data), -1) {
			used[m[1]] = true
		}
	}
	goFiles, _ := filepath.Glob("*.go")
	for _, f := range goFiles {
		data, _ := os.ReadFile(f)
		for _, m := range goKey.FindAllStringSubmatch(string(data), -1) {
			used[m[1]+m[2]] = true
		}
	}
	if len(used) < 20 {
		t.Fatalf("found only %d keys in use: the scan is broken", len(used))
	}
	for key := range used {
		for _, lang := range languages {
			if _, ok := messages[lang][key]; !ok {
				t.Errorf("%s has no %q", lang, key)
			}
		}
	}
	for key := range messages["en"] {
		if _, ok := messages["zh"][key]; !ok {
			t.Errorf("zh has no %q", key)
		}
	}
	for key := range messages["zh"] {
		if _, ok := messages["en"][key]; !ok {
			t.Errorf("en has no %q", key)
		}
	}
}

func TestLanguageFollowsTheSwitchThenTheBrowser(t *testing.T) {
	cases := []struct{ cookie, accept, want string }{
		{"", "", "zh"},
		{"", "en-US,en;q=0.9", "en"},
		{"", "fr-FR, zh-CN;q=0.8", "zh"},
		{"en", "zh-CN", "en"},
		{"xx", "en", "en"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		if c.cookie != "" {
			r.Header.Set("Cookie", langCookie+"="+c.cookie)
		}
		r.Header.Set("Accept-Language", c.accept)
		if got := language(r); got != c.want {
			t.Errorf("cookie %q, Accept-Language %q: %s, want %s", c.cookie, c.accept, got, c.want)
		}
	}
}
