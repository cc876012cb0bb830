package browser_test

import (
	"strings"
	"testing"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestBrowserSignInTheDeltaAndRefusals signs in to Shanghai's console in
// headless Chromium: a wrong key is refused with the node's reason; the
// operator sees the delta map of all 41 cities with the three members and
// the raft figures; a form whose CSRF token was removed is refused and
// changes nothing; the language switch works; a session past its lifetime
// is sent back to sign-in.
func TestBrowserSignInTheDeltaAndRefusals(t *testing.T) {
	c := startConsoleCluster(t, nil)
	b := newBrowser(t, c.Node(0).AdminAddr())

	b.visit("/")
	if p := b.path(); p != "/signin" {
		t.Fatalf("an anonymous visit to / ended on %s, want /signin", p)
	}
	b.shot("signin")
	b.signIn("yrdk_0000000000000000_bm90YWtleQ")
	if msg := b.text("#problem"); !strings.Contains(msg, "API key unknown or revoked") {
		t.Fatalf("a wrong key: the page says %q", msg)
	}

	b.signIn(c.key(t, 0, "", yrdv1.Role_ROLE_OPERATOR))
	if n := b.count("#delta-map circle"); n != 41 {
		t.Fatalf("the map draws %d cities, want 41", n)
	}
	if n := b.count("#delta-map g.member"); n != 3 {
		t.Fatalf("the map marks %d members, want 3", n)
	}
	if n := b.count("#members tbody tr"); n != 3 {
		t.Fatalf("the member table has %d rows, want 3", n)
	}
	if leader := b.text("#leader"); leader == "" || strings.Contains(leader, "无") {
		t.Fatalf("leader shown as %q", leader)
	}
	b.shot("delta")

	// The sign-out form without its CSRF token: refused, still signed in.
	b.remove(`form[action="/signout"] input[name=csrf]`)
	b.submit("#signout")
	if msg := b.text("#problem"); !strings.Contains(msg, "CSRF") {
		t.Fatalf("a form without its CSRF token: the page says %q", msg)
	}
	b.visit("/")
	if p := b.path(); p != "/" {
		t.Fatalf("the refused sign-out signed out anyway (now on %s)", p)
	}

	if got := b.text("a.brand"); got != "长三角数据交易节点" {
		t.Fatalf("a browser asking for Chinese gets the brand %q", got)
	}
	b.submit("#lang")
	if got := b.text("a.brand"); got != "Yangtze River Delta data exchange" {
		t.Fatalf("after the language switch the brand reads %q", got)
	}

	c.clock.advance(9 * time.Hour)
	b.visit("/")
	if p := b.path(); p != "/signin" {
		t.Fatalf("an expired session still opened / (now on %s)", p)
	}
}

// TestBrowserLanguageSwitchKeepsThePage: switching language on a filtered
// page comes back to the same filter.
func TestBrowserLanguageSwitchKeepsThePage(t *testing.T) {
	c := startConsoleCluster(t, nil)
	b := newBrowser(t, c.Node(0).AdminAddr())
	b.signIn(c.key(t, 0, "", yrdv1.Role_ROLE_OPERATOR))
	b.visit("/catalog?city=hangzhou&level=general")
	b.submit("#lang")
	if p := b.path(); p != "/catalog?city=hangzhou&level=general" {
		t.Fatalf("after the switch the browser is on %s", p)
	}
	if got := b.text("a.brand"); got != "Yangtze River Delta data exchange" {
		t.Fatalf("after the switch the brand reads %q", got)
	}
}
