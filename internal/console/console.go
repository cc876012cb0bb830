// Package console is the node's web console for the people of a city:
// operators, chief data officers, analysts and auditors. It is served on
// the node's admin listener from templates and static files embedded in
// the binary, with no script at all, and it has no rules of its own: every
// page and action is a call to the node's gRPC API as the signed-in
// principal, so the same role table, decisions and audit trail apply as
// for the CLI (DESIGN.md says why and how).
package console

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"
)

// Config is what the console needs from its node.
type Config struct {
	// Conn reaches the node's own client API. Calls on it carry the
	// signed-in principal's credentials (see callCreds).
	Conn *grpc.ClientConn
	// City is the node's city, which the console is of.
	City string
	// Logger receives the console's own events (sign-ins, refusals).
	Logger *slog.Logger
	// SessionTTL bounds a session from sign-in; IdleTTL from its last use.
	SessionTTL, IdleTTL time.Duration
	// Now is the clock sessions expire by; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig is a console for city on conn with the usual lifetimes:
// a working day at most, half an hour idle.
func DefaultConfig(conn *grpc.ClientConn, city string, log *slog.Logger) Config {
	return Config{Conn: conn, City: city, Logger: log, SessionTTL: 8 * time.Hour, IdleTTL: 30 * time.Minute}
}

// Validate reports the first missing or impossible setting.
func (c Config) Validate() error {
	switch {
	case c.Conn == nil:
		return errors.New("console: Conn is required")
	case c.City == "":
		return errors.New("console: City is required")
	case c.Logger == nil:
		return errors.New("console: Logger is required")
	case c.SessionTTL <= 0 || c.IdleTTL <= 0:
		return errors.New("console: SessionTTL and IdleTTL must be positive")
	}
	return nil
}

// Console serves the web console. Safe for concurrent use.
type Console struct {
	cfg      Config
	log      *slog.Logger
	sessions *sessionStore
	pages    *pages
	api      apiClients
}

// New makes a console; it starts nothing (Handler serves it).
func New(cfg Config) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p, err := loadPages()
	if err != nil {
		return nil, err
	}
	return &Console{cfg: cfg, log: cfg.Logger, sessions: newSessionStore(cfg.SessionTTL, cfg.IdleTTL, cfg.Now),
		pages: p, api: newAPIClients(cfg.Conn)}, nil
}

// Handler routes the console. Every response carries the security headers;
// every page but sign-in and the static files needs a session; every POST
// needs the session's CSRF token.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticFiles()))
	mux.HandleFunc("GET /signin", c.signinPage)
	mux.HandleFunc("POST /signin", c.signinKey)
	mux.HandleFunc("POST /signin/certificate", c.signinCertificate)
	mux.HandleFunc("POST /signout", c.withSession(c.signout))
	mux.HandleFunc("GET /{$}", c.withSession(c.deltaPage))
	c.routePages(mux)
	return securityHeaders(mux)
}
