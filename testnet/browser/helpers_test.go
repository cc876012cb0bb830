package browser_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/testnet"
)

// fakeClock is the clock console sessions expire by in these tests: the
// test moves it instead of waiting hours.
type fakeClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// consoleCluster is a 3-city in-process delta whose nodes serve the
// console on loopback admin listeners.
type consoleCluster struct {
	*testnet.Cluster
	clock *fakeClock
}

func startConsoleCluster(t *testing.T, configure func(i int, cfg *node.Config)) *consoleCluster {
	t.Helper()
	clock := &fakeClock{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := testnet.Start(ctx, testnet.Options{DataDir: t.TempDir(), Configure: func(i int, cfg *node.Config) {
		cfg.AdminAddr = "127.0.0.1:0"
		cfg.ConsoleClock = clock.now
		if configure != nil {
			configure(i, cfg)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &consoleCluster{Cluster: c, clock: clock}
}

// key is an API key of city i's org with role.
func (c *consoleCluster) key(t *testing.T, i int, org string, role yrdv1.Role) string {
	t.Helper()
	k, err := c.Key(i, org, role)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// browser is a headless Debian Chromium driven over the DevTools protocol,
// trusting exactly one certificate: the console's (by its public key).
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

// chromiumPath finds the browser; its absence fails the test: CI installs
// it (.ci/run), and a browser test that cannot run must not pass.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: install Debian's chromium (apt-get install chromium), as .ci/run does")
	return ""
}

func newBrowser(t *testing.T, adminAddr string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.Flag("ignore-certificate-errors-spki-list", spkiHash(t, adminAddr)),
		chromedp.Flag("accept-lang", "zh-CN,zh"), // the console follows the browser's language
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	shots := os.Getenv("YRDNODE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, ctx: ctx, base: "https://" + adminAddr, shots: shots}
	// The first call starts the browser, which lives as long as that
	// call's context: so no deadline on this one.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// spkiHash is the base64 sha256 of the console certificate's public key,
// the form Chromium's --ignore-certificate-errors-spki-list takes.
func spkiHash(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only to read the certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// do runs steps with a deadline far above any page's time.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// get runs one action that returns a value.
func get[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return v
}

// visit opens path and waits for its main element.
func (b *browser) visit(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS("main")))
}

// text is the visible text of the first element sel matches.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return get(b, chromedp.Text(chromedp.CSS(sel)))
}

// count is how many elements sel matches.
func (b *browser) count(sel string) int {
	b.t.Helper()
	return get(b, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
}

// path is the page's current path.
func (b *browser) path() string {
	b.t.Helper()
	return strings.TrimPrefix(get(b, chromedp.Location()), b.base)
}

// submit clicks sel (a submit button or link) and waits for the next page.
func (b *browser) submit(sel string) {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](`document.body.dataset.stale = "1"`),
		chromedp.Click(chromedp.CSS(sel)),
		chromedp.WaitReady(chromedp.CSS("body:not([data-stale]) > main")))
}

// signIn signs in with key on the sign-in page.
func (b *browser) signIn(key string) {
	b.t.Helper()
	b.visit("/signin")
	b.do(chromedp.SendKeys(chromedp.CSS("#key"), key))
	b.submit("#signin")
}

// remove removes the elements sel matches, as a page's own script could
// not (the console's CSP allows none): the DevTools protocol can.
func (b *browser) remove(sel string) {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll(` + jsString(sel) + `).forEach(e => e.remove())`))
}

// shot saves the page at 1280×800 and at a phone's width as NAME.png and
// NAME-phone.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	wide := get(b, chromedp.FullScreenshot(100))
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	phone := get(b, chromedp.FullScreenshot(100))
	// On a phone the page must fit the screen's width: wide tables scroll
	// inside their own box, the page itself never sideways.
	if w := get(b, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 390 {
		b.t.Errorf("%s is %d px wide on a 390 px phone screen", name, w)
	}
	b.do(chromedp.EmulateViewport(1280, 800))
	for file, data := range map[string][]byte{name + ".png": wide, name + "-phone.png": phone} {
		if err := os.WriteFile(filepath.Join(b.shots, file), data, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// apiCtx bounds a test's own API calls, far above their time.
func apiCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
