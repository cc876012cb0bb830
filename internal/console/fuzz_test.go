package console

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The console reads what browsers send (query strings, forms) and what the
// node says (error positions). Whatever arrives, these readers refuse it
// or build a request; none panics.

func FuzzSQLErrorMark(f *testing.F) {
	f.Add("SELECT district,\n\tcount(*) FRM 养老.x", "sql: line 2, column 11: expected FROM")
	f.Add("", "line 1, column 1: x")
	f.Add("a\r\nb", "line 2, column 99999999999999999999: x")
	f.Fuzz(func(t *testing.T, sql, msg string) {
		v := sqlError(sql, status.New(codes.InvalidArgument, msg))
		if v == nil {
			return
		}
		lines := strings.Split(sql, "\n")
		if len(v.Lines) != len(lines) {
			t.Fatalf("%d lines drawn of %d", len(v.Lines), len(lines))
		}
		marked := 0
		for i, l := range v.Lines {
			if !l.Err {
				continue
			}
			marked++
			// Bytes that are not UTF-8 are drawn as U+FFFD, as a browser would.
			if got, want := l.Before+l.Mark+l.After, string([]rune(strings.TrimRight(lines[i], "\r"))); got != want && got != want+" " {
				t.Fatalf("line %d drawn as %q, is %q", i+1, got, want)
			}
		}
		if marked != 1 {
			t.Fatalf("%d lines marked", marked)
		}
	})
}

func FuzzFilterForms(f *testing.F) {
	f.Add("action=grant_approve&decision=deny&since=2026-12-01T10:00&limit=5&after_seq=3")
	f.Add("city=shanghai&level=core&size=50&page=abc&retired=1")
	f.Add("year=2026&org=x")
	f.Add("since=9999-99-99T99:99&limit=-1&size=999999999999999999999")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		readAuditForm(q).request()
		parseCatalogFilter(q)
		usageForm{Year: q.Get("year"), Org: q.Get("org")}.request()
	})
}

func FuzzGrantRequestForm(f *testing.F) {
	f.Add("purpose=elderly-care-planning&result_form=aggregates&days=30&allow_personal=1&note=x")
	f.Add("result_form=records&days=-99999999999")
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/datasets/x/request", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req, problem := grantRequestFromForm("x", r)
		if (req == nil) == (problem == "") {
			t.Fatalf("a request %v and a problem %q", req, problem)
		}
		// The day count is bounded, so a duration never wraps around into
		// another valid one; a negative one is the node's to refuse.
		if d := req.GetDuration().AsDuration(); d > datasetMaxDays*24*time.Hour || d < -datasetMaxDays*24*time.Hour {
			t.Fatalf("form %q asks for %v, past the %d-day bound", body, d, datasetMaxDays)
		}
	})
}

// FuzzLanguageSwitchStaysHome: whatever back the switch is given, the
// browser is sent to a path of this console, read as a browser reads a
// Location (tabs and newlines dropped, "\" as "/").
func FuzzLanguageSwitchStaysHome(f *testing.F) {
	for _, s := range []string{"/catalog?city=hangzhou", "//evil.example", "/\t/evil.example", "/\\evil.example", "https://evil.example/", "/%2F%2Fevil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, back string) {
		got := localPath(back)
		seen := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(got)
		if !strings.HasPrefix(seen, "/") || strings.HasPrefix(seen, "//") {
			t.Fatalf("back %q sends the browser to %q", back, got)
		}
	})
}
