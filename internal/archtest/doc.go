// Package archtest holds tests that guard the module's layout: a table of
// which module packages each package may import (layout_test.go), rules no
// row can lift (pure packages stay pure, only tests import the test
// harnesses, nothing under internal/ but the CLI imports the daemon), that
// the yrdnode binary links no test harness, and that every package has a
// doc comment. It has no code of its own.
package archtest
