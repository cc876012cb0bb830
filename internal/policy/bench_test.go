package policy

import (
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func BenchmarkDecide(b *testing.B) {
	cases := []struct {
		name string
		req  func(testing.TB) *Request
		want yrdv1.Effect
	}{
		// Every column of the elderly dataset: pseudonymised, masked,
		// withheld and raw columns, under an applicable grant.
		{"general-rows-personal", with(elderlyRows, func(r *Request) {
			r.Grants = []*yrdv1.Grant{approved("g-1", elderlyID, "elderly-care-planning", rows)}
		}), allowRows},
		{"important-aggregates-20-grants", with(hospitalAggs, func(r *Request) {
			r.Grants = manyGrants(hospitalID, "public-health-research", 20)
		}), allowAggs},
		{"cross-border-rows", abroad(tripsRows, func(r *Request) { r.Access.Columns = nil }), allowRows},
		{"cross-border-threshold-deny", abroad(tripsRows, func(r *Request) { r.CrossBorderUsage.Individuals = 100000 }), deny},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r := c.req(b)
			if d := Decide(r); d.GetEffect() != c.want {
				b.Fatalf("effect %v, want %v: %s", d.GetEffect(), c.want, d.GetReason())
			}
			b.ReportAllocs()
			for b.Loop() {
				Decide(r)
			}
		})
	}
}
