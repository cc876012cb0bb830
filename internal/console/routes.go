package console

import (
	"html/template"
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// routePages adds the console's pages beyond sign-in and the delta; each
// page's file has its own route function, listed here.
func (c *Console) routePages(mux *http.ServeMux) {
	mux.HandleFunc("GET /lang", c.switchLanguage)
	c.routeCatalog(mux)
	c.routeGrants(mux)
	c.routeAudit(mux)
	c.routeQuery(mux)
	c.routeUsage(mux)
}

// messages are the console's words in each language: each page's file
// keeps its own set, listed here. Dataset titles, organisation names and
// the node's own error messages are shown as published or as the node
// said them, never translated.
var messages = mergeMessages(coreMessages, catalogMessages, grantsMessages, auditMessages, queryMessages, usageMessages)

func mergeMessages(sets ...map[string]map[string]string) map[string]map[string]string {
	all := map[string]map[string]string{}
	for _, set := range sets {
		for lang, words := range set {
			if all[lang] == nil {
				all[lang] = map[string]string{}
			}
			for k, v := range words {
				if _, dup := all[lang][k]; dup {
					panic("console: message " + k + " is defined twice") // a programming error, caught by any test
				}
				all[lang][k] = v
			}
		}
	}
	return all
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
