// Package browser holds the web console's end-to-end tests: a real delta
// of in-process nodes, driven from headless Debian Chromium through
// chromedp, with screenshots of every page (see internal/console/DESIGN.md).
// It has no code of its own beyond its tests.
package browser
