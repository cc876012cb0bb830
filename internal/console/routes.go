package console

import (
	"html/template"
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// routePages adds the console's pages beyond sign-in and the delta; each
// page's file has its own route function.
func (c *Console) routePages(mux *http.ServeMux) {
	mux.HandleFunc("GET /lang", c.switchLanguage)
}

// templateFuncs are the helpers every template may use; words go through
// pageData.T, so these stay free of language.
var templateFuncs = template.FuncMap{
	"ts": func(t *timestamppb.Timestamp) string {
		if t == nil || !t.IsValid() || t.AsTime().IsZero() {
			return ""
		}
		return t.AsTime().UTC().Format(time.DateTime)
	},
}
