package console

import (
	"crypto/x509"
	"net/http"
	"net/url"
)

// csp allows nothing but the console's own stylesheet and images: no
// script at all, no inline style, no framing, forms only to the console.
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin") // "no-referrer" would make the browser send "Origin: null"
		h.Set("Strict-Transport-Security", "max-age=31536000")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// sessionHandler is a page or action of a signed-in person.
type sessionHandler func(w http.ResponseWriter, r *http.Request, s *session)

// withSession runs h for the request's live session. Without one, a page
// request goes to sign-in and anything else is refused. A POST must carry
// the session's CSRF token and come from the console's own origin.
func (c *Console) withSession(h sessionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var s *session
		if ck, err := r.Cookie(sessionCookie); err == nil {
			s = c.sessions.get(ck.Value)
		}
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/signin", http.StatusSeeOther)
				return
			}
			c.refuse(w, r, nil, http.StatusUnauthorized, c.tr(r, "err.no_session"))
			return
		}
		if r.Method == http.MethodPost && (!s.validCSRF(r.PostFormValue("csrf")) || !sameOrigin(r)) {
			c.log.Warn("console refused a form without its CSRF token", "org", s.who.GetOrg(), "name", s.who.GetName(), "path", r.URL.Path)
			c.refuse(w, r, s, http.StatusForbidden, c.tr(r, "err.csrf"))
			return
		}
		h(w, r, s)
	}
}

// sameOrigin reports whether a state-changing request came from a page of
// this console: browsers send Origin on every POST; a request without one
// is not from a browser form and is judged by its CSRF token alone.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

// clientCertificate is the client certificate the TLS layer verified
// against the city CA, or nil.
func clientCertificate(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0][0]
}
