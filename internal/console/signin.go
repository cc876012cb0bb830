package console

import (
	"context"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/status"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// preCSRFCookie guards the sign-in form itself (login CSRF): the form's
// hidden token must equal this cookie, which a cross-site page can neither
// read nor set.
const preCSRFCookie = "__Host-yrd_signin"

func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignin(w, r, http.StatusOK, "")
}

func (c *Console) renderSignin(w http.ResponseWriter, r *http.Request, code int, problem string) {
	token := randomToken()
	http.SetCookie(w, &http.Cookie{Name: preCSRFCookie, Value: token, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	c.render(w, r, code, "signin", pageData{CSRF: token, Problem: problem,
		Data: map[string]any{"HasCertificate": clientCertificate(r) != nil}})
}

// signinKey signs in with an API key: the node's WhoAmI says whose it is.
func (c *Console) signinKey(w http.ResponseWriter, r *http.Request) {
	if !c.signinFormOK(r) {
		c.renderSignin(w, r, http.StatusForbidden, c.tr(r, "err.csrf"))
		return
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	if key == "" {
		c.renderSignin(w, r, http.StatusBadRequest, c.tr(r, "err.key_required"))
		return
	}
	c.startSession(w, r, callCreds{apiKey: key})
}

// signinCertificate signs in with the client certificate the browser
// presented on the TLS connection (verified against the city CA there).
func (c *Console) signinCertificate(w http.ResponseWriter, r *http.Request) {
	if !c.signinFormOK(r) {
		c.renderSignin(w, r, http.StatusForbidden, c.tr(r, "err.csrf"))
		return
	}
	cert := clientCertificate(r)
	if cert == nil {
		c.renderSignin(w, r, http.StatusUnauthorized, c.tr(r, "err.no_certificate"))
		return
	}
	c.startSession(w, r, callCreds{certDER: cert.Raw})
}

// startSession asks the node who creds belong to; the node authenticates
// them exactly as for any client, and a refusal is on its record.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, creds callCreds) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	who, err := c.api.auth.WhoAmI(creds.outgoing(ctx), &yrdv1.WhoAmIRequest{})
	if err != nil {
		c.log.Info("console sign-in refused", "err", status.Convert(err).Message())
		c.renderSignin(w, r, http.StatusUnauthorized, c.tr(r, "err.signin_refused")+": "+status.Convert(err).Message())
		return
	}
	s := c.sessions.create(creds, who.GetPrincipal(), who.GetMethod())
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.id, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(c.cfg.SessionTTL.Seconds())})
	http.SetCookie(w, &http.Cookie{Name: preCSRFCookie, Path: "/", Secure: true, HttpOnly: true, MaxAge: -1})
	c.log.Info("console sign-in", "org", s.who.GetOrg(), "name", s.who.GetName(), "method", s.method)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) signinFormOK(r *http.Request) bool {
	ck, err := r.Cookie(preCSRFCookie)
	return err == nil && ck.Value != "" && r.PostFormValue("csrf") == ck.Value && sameOrigin(r)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.end(s.id)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", Secure: true, HttpOnly: true, MaxAge: -1})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}
