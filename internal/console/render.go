package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/internal/auth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

func staticFiles() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	return http.FileServerFS(sub)
}

// pages are the parsed templates, one set per page: the layout plus the
// page's own "title" and "content".
type pages struct{ byName map[string]*template.Template }

func loadPages() (*pages, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, file := range names {
		name := strings.TrimSuffix(path.Base(file), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(templateFuncs).ParseFS(templateFS, "templates/layout.html", file)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// pageData is what every template gets.
type pageData struct {
	Lang    string
	Path    string // where the language switch comes back to
	Nav     string // which menu entry is the current page
	Who     *yrdv1.Principal
	City    string
	CSRF    string
	Problem string // an error to show above the content
	Data    any    // the page's own data
}

// T translates key into the page's language.
func (d pageData) T(key string) string { return translate(d.Lang, key) }

// Role is the signed-in role's name, as the CLI spells it.
func (d pageData) Role() string {
	if d.Who == nil {
		return ""
	}
	return auth.RoleName(d.Who.GetRole())
}

// render writes page name with data, buffered, so a template failure gives
// a clean error instead of half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, name string, d pageData) {
	t := c.pages.byName[name]
	if t == nil {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	d.Lang, d.Path, d.City = language(r), r.URL.Path, c.cfg.City
	if r.Method == http.MethodGet {
		d.Path = r.URL.RequestURI() // the switch keeps a page's filters
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	buf.WriteTo(w)
}

// page renders a signed-in page.
func (c *Console) page(w http.ResponseWriter, r *http.Request, s *session, name, nav string, data any) {
	c.render(w, r, http.StatusOK, name, c.sessionData(s, nav, data))
}

func (c *Console) sessionData(s *session, nav string, data any) pageData {
	d := pageData{Nav: nav, Data: data}
	if s != nil {
		d.Who, d.CSRF = s.who, s.csrf
	}
	return d
}

// refuse renders the refusal page with msg.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, s *session, code int, msg string) {
	d := c.sessionData(s, "", nil)
	d.Problem = msg
	c.render(w, r, code, "refused", d)
}

// apiError shows what the node answered, as the CLI would print it, with
// the HTTP status that matches the gRPC one. A session whose credentials
// the node no longer accepts (a revoked key) ends here.
func (c *Console) apiError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	st := status.Convert(err)
	if st.Code() == codes.Unauthenticated && s != nil {
		c.sessions.end(s.id)
	}
	c.refuse(w, r, s, httpStatus(st.Code()), st.Code().String()+": "+st.Message())
}

func httpStatus(code codes.Code) int {
	switch code {
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted, codes.FailedPrecondition:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}
