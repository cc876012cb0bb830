package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"slices"
	"sync"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// sessionCookie is the session's cookie. The __Host- prefix makes the
// browser refuse it unless it is Secure, host-only and for the whole path.
const sessionCookie = "__Host-yrd_session"

// session is one signed-in person. Its credentials stay on the server: the
// cookie carries only the random session id.
type session struct {
	id     string
	csrf   string // sent back with every form; compared in constant time
	creds  callCreds
	who    *yrdv1.Principal
	method string // "api-key" or "certificate", as WhoAmI says
	start  time.Time
	seen   time.Time
	query  queryMemory // the last query's outcome, for its page and downloads

	purposesOnce sync.Once
	purposes     []string // the catalog's permitted purposes, read once a session
}

// validCSRF reports whether token is this session's CSRF token.
func (s *session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}

// sessionStore keeps sessions in memory: a restart signs everyone out,
// which is what should happen when a node's keys or rules may have changed.
// Expired sessions are dropped as they are met and on every sign-in, so no
// goroutine is needed to sweep them.
type sessionStore struct {
	ttl, idle time.Duration
	now       func() time.Time

	mu   sync.Mutex
	byID map[string]*session
}

func newSessionStore(ttl, idle time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{ttl: ttl, idle: idle, now: now, byID: map[string]*session{}}
}

// maxSessionsPerPerson bounds one person's live sessions (each may keep a
// query result of up to keptBytes): a new sign-in past it ends their
// least recently used one, so signing in again and again cannot fill the
// node's memory.
const maxSessionsPerPerson = 4

// create starts a session for who, signed in with creds.
func (st *sessionStore) create(creds callCreds, who *yrdv1.Principal, method string) *session {
	now := st.now()
	s := &session{id: randomToken(), csrf: randomToken(), creds: creds, who: who, method: method, start: now, seen: now}
	st.mu.Lock()
	defer st.mu.Unlock()
	var theirs []*session
	for id, old := range st.byID {
		switch {
		case st.expired(old, now):
			delete(st.byID, id)
		case samePerson(old.who, who):
			theirs = append(theirs, old)
		}
	}
	slices.SortFunc(theirs, func(a, b *session) int { return a.seen.Compare(b.seen) })
	for len(theirs) >= maxSessionsPerPerson {
		delete(st.byID, theirs[0].id)
		theirs = theirs[1:]
	}
	st.byID[s.id] = s
	return s
}

func samePerson(a, b *yrdv1.Principal) bool {
	return a.GetCity() == b.GetCity() && a.GetOrg() == b.GetOrg() && a.GetName() == b.GetName() && a.GetRole() == b.GetRole()
}

// get returns the live session id names and marks it used, or nil.
func (st *sessionStore) get(id string) *session {
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.byID[id]
	if s == nil {
		return nil
	}
	if st.expired(s, now) {
		delete(st.byID, id)
		return nil
	}
	s.seen = now
	return s
}

// end signs a session out.
func (st *sessionStore) end(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.byID, id)
}

func (st *sessionStore) expired(s *session, now time.Time) bool {
	return now.Sub(s.start) >= st.ttl || now.Sub(s.seen) >= st.idle
}

// randomToken is 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
