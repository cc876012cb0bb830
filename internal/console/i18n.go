package console

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// langCookie holds the language a person chose with the switch; without
// it the browser's Accept-Language decides.
const langCookie = "yrd_lang"

// languages the console speaks; the first is the default.
var languages = []string{"zh", "en"}

// language is the request's language: the switch's choice, else the
// first of the browser's languages the console speaks, else Chinese.
func language(r *http.Request) string {
	if ck, err := r.Cookie(langCookie); err == nil && knownLanguage(ck.Value) {
		return ck.Value
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if knownLanguage(base) {
			return base
		}
	}
	return languages[0]
}

func knownLanguage(l string) bool { return slices.Contains(languages, l) }

// switchLanguage sets the language cookie and goes back to the page the
// switch was on (a path of this console only).
func (c *Console) switchLanguage(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("to")
	if !knownLanguage(to) {
		http.Error(w, "to: want zh or en", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: to, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: 365 * 24 * 3600})
	http.Redirect(w, r, localPath(r.URL.Query().Get("back")), http.StatusSeeOther)
}

// localPath is back if it is a path of this console, else "/": the switch
// must not send anyone to another site. Browsers drop tabs and newlines
// from a URL and read "\" as "/", so "/\t/evil.example" would be
// "//evil.example": any control character or backslash is refused, and
// what is left must be a path that does not start with "//".
func localPath(back string) string {
	ok := strings.HasPrefix(back, "/") && !strings.HasPrefix(back, "//") &&
		!strings.ContainsFunc(back, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' })
	if u, err := url.Parse(back); !ok || err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return back
}

func (c *Console) tr(r *http.Request, key string) string { return translate(language(r), key) }

// translate looks key up in lang, then in English; a key in neither shows
// as itself, which a test forbids for every key the console uses.
func translate(lang, key string) string {
	if m, ok := messages[lang][key]; ok {
		return m
	}
	if m, ok := messages["en"][key]; ok {
		return m
	}
	return key
}
