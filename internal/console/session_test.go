package console

import (
	"testing"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestSessionsExpireBySignInAndByIdleness: a session used often still ends
// at its lifetime; one left unused ends after the idle time; an ended one
// is gone.
func TestSessionsExpireBySignInAndByIdleness(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	st := newSessionStore(8*time.Hour, 30*time.Minute, func() time.Time { return now })
	busy := st.create(callCreds{apiKey: "k"}, nil, "api-key")
	idle := st.create(callCreds{apiKey: "k"}, nil, "api-key")
	for range 17 { // 17 × 29 min: under the idle bound each time, past 8 h in all
		now = now.Add(29 * time.Minute)
		if now.Sub(busy.start) < 8*time.Hour && st.get(busy.id) == nil {
			t.Fatalf("a session in use ended after %v", now.Sub(busy.start))
		}
	}
	if st.get(busy.id) != nil {
		t.Fatal("a session outlived its 8 h lifetime")
	}
	if st.get(idle.id) != nil {
		t.Fatal("a session unused for more than 30 min is still live")
	}
	s := st.create(callCreds{apiKey: "k"}, nil, "api-key")
	st.end(s.id)
	if st.get(s.id) != nil {
		t.Fatal("a signed-out session is still live")
	}
	if len(st.byID) != 0 {
		t.Fatalf("%d expired sessions kept", len(st.byID))
	}
}

func TestCSRFTokenIsTheSessionsOwn(t *testing.T) {
	st := newSessionStore(time.Hour, time.Hour, time.Now)
	a, b := st.create(callCreds{}, nil, ""), st.create(callCreds{}, nil, "")
	if !a.validCSRF(a.csrf) || a.validCSRF(b.csrf) || a.validCSRF("") || a.csrf == a.id {
		t.Fatal("a session accepts a token not its own, or refuses its own")
	}
}

// TestSignInsPastTheBoundEndTheOldestSession: a person signing in again
// and again keeps at most maxSessionsPerPerson sessions, losing the least
// recently used; another person's session is untouched.
func TestSignInsPastTheBoundEndTheOldestSession(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	st := newSessionStore(8*time.Hour, time.Hour, func() time.Time { return now })
	who := &yrdv1.Principal{City: "hangzhou", Org: "hz-planning", Name: "a", Role: yrdv1.Role_ROLE_ANALYST}
	other := st.create(callCreds{}, &yrdv1.Principal{City: "hangzhou", Org: "hz-planning", Name: "b", Role: yrdv1.Role_ROLE_ANALYST}, "")
	var mine []*session
	for range maxSessionsPerPerson + 2 {
		now = now.Add(time.Minute)
		mine = append(mine, st.create(callCreds{}, who, ""))
	}
	for i, s := range mine {
		if live := st.get(s.id) != nil; live != (i >= 2) {
			t.Errorf("session %d of %d: live %v", i+1, len(mine), live)
		}
	}
	if st.get(other.id) == nil {
		t.Fatal("another person's session ended")
	}
}
