package policy

import (
	"strconv"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// grantStage is how far a grant got through the applicability checks; a
// higher stage came closer to applying, and its failure is the most useful
// reason to give.
type grantStage int

const (
	stageOtherDataset grantStage = iota
	stageOtherRequester
	stageOtherPurpose
	stageForm
	stageState
	stageRevoked
	stageNoExpiry
	stageExpired
	stageApplies
)

// ApplicableGrant returns the grant Decide would rely on for r, or nil and
// why none applies. A grant applies when it is for r's dataset, held by the
// requester's city and organisation, for r's purpose, in a result form that
// covers the request (ROWS covers aggregates too; for IMPORTANT data the
// request is judged as aggregates, the only form that can leave), approved,
// never revoked and expiring after r.Now. Grants for another dataset or
// organisation are reported as no grant at all, so that the reason never
// describes another organisation's grants.
func ApplicableGrant(r *Request) (*yrdv1.Grant, string) {
	if r == nil {
		return nil, "no request"
	}
	level := effectiveLevel(r.Dataset)
	form := r.Access.GetResultForm()
	if level == levelImportant {
		form = yrdv1.ResultForm_RESULT_FORM_AGGREGATES
	}
	best, closest, stage := scanGrants(r, form, level == levelGeneral)
	if best != nil {
		return best, ""
	}
	return nil, whyNot(r, closest, stage)
}

// scanGrants returns the preferred applicable grant, if any, and otherwise
// the grant that came closest with its stage. The preference does not
// depend on the order of r.Grants: allow_personal first (when it matters),
// then the smallest id.
func scanGrants(r *Request, form yrdv1.ResultForm, preferPersonal bool) (best, closest *yrdv1.Grant, stage grantStage) {
	for _, g := range r.Grants {
		if g == nil {
			continue
		}
		st := checkGrant(g, r, form)
		if st == stageApplies {
			if best == nil || betterGrant(g, best, preferPersonal) {
				best = g
			}
			continue
		}
		if closest == nil || st > stage || (st == stage && g.GetId() < closest.GetId()) {
			closest, stage = g, st
		}
	}
	if best != nil {
		return best, nil, stageApplies
	}
	return nil, closest, stage
}

func betterGrant(g, than *yrdv1.Grant, preferPersonal bool) bool {
	if preferPersonal && g.GetAllowPersonal() != than.GetAllowPersonal() {
		return g.GetAllowPersonal()
	}
	return g.GetId() < than.GetId()
}

func checkGrant(g *yrdv1.Grant, r *Request, form yrdv1.ResultForm) grantStage {
	// Empty identities never match: an unnamed holder is nobody.
	switch {
	case g.GetDatasetId() == "" || g.GetDatasetId() != r.Dataset.GetId():
		return stageOtherDataset
	case g.GetRequesterCity() == "" || g.GetRequesterOrg() == "" ||
		g.GetRequesterCity() != r.Requester.GetCity() || g.GetRequesterOrg() != r.Requester.GetOrg():
		return stageOtherRequester
	case g.GetPurpose() == "" || g.GetPurpose() != r.Access.GetPurpose():
		return stageOtherPurpose
	case !covers(g.GetResultForm(), form):
		return stageForm
	case g.GetState() != yrdv1.GrantState_GRANT_STATE_APPROVED:
		return stageState
	case g.GetRevokedAt() != nil:
		return stageRevoked
	case g.GetExpiresAt() == nil:
		return stageNoExpiry
	case !after(g.GetExpiresAt().GetSeconds(), g.GetExpiresAt().GetNanos(), r.Now):
		return stageExpired
	}
	return stageApplies
}

// covers reports whether a grant for form grant allows a result of form
// want: whoever may see rows may see aggregates of them.
func covers(grant, want yrdv1.ResultForm) bool {
	switch grant {
	case yrdv1.ResultForm_RESULT_FORM_ROWS:
		return want == yrdv1.ResultForm_RESULT_FORM_ROWS || want == yrdv1.ResultForm_RESULT_FORM_AGGREGATES
	case yrdv1.ResultForm_RESULT_FORM_AGGREGATES:
		return want == yrdv1.ResultForm_RESULT_FORM_AGGREGATES
	}
	return false
}

// after reports whether the instant (sec, nsec) is strictly after now.
func after(sec int64, nsec int32, now time.Time) bool {
	ns := now.Unix()
	return sec > ns || (sec == ns && int(nsec) > now.Nanosecond())
}

func whyNot(r *Request, g *yrdv1.Grant, st grantStage) string {
	if g == nil || st <= stageOtherRequester {
		b := []byte("no grant on dataset ")
		b = appendShow(b, r.Dataset.GetId())
		b = append(b, " for "...)
		b = append(b, r.Requester.GetCity()...)
		b = append(b, '/')
		b = append(b, r.Requester.GetOrg()...)
		return string(b)
	}
	b := appendShow([]byte("grant "), g.GetId())
	switch st {
	case stageOtherPurpose:
		b = append(b, " is for purpose "...)
		b = appendShow(b, g.GetPurpose())
		b = append(b, ", not "...)
		b = appendShow(b, r.Access.GetPurpose())
	case stageForm:
		if g.GetResultForm() == yrdv1.ResultForm_RESULT_FORM_AGGREGATES {
			b = append(b, " allows aggregates only, not rows"...)
		} else {
			b = append(b, " names no result form"...)
		}
	case stageState:
		switch g.GetState() {
		case yrdv1.GrantState_GRANT_STATE_REQUESTED:
			b = append(b, " is only requested, not approved"...)
		case yrdv1.GrantState_GRANT_STATE_REJECTED:
			b = append(b, " was rejected"...)
		case yrdv1.GrantState_GRANT_STATE_REVOKED:
			b = append(b, " was revoked"...)
		default:
			b = append(b, " is not approved"...)
		}
	case stageRevoked:
		b = append(b, " was revoked at "...)
		b = g.GetRevokedAt().AsTime().AppendFormat(b, time.RFC3339)
	case stageNoExpiry:
		b = append(b, " has no expiry date"...)
	case stageExpired:
		b = append(b, " expired at "...)
		b = g.GetExpiresAt().AsTime().AppendFormat(b, time.RFC3339)
	default:
		b = append(b, " does not apply (stage "...)
		b = strconv.AppendInt(b, int64(st), 10)
		b = append(b, ')')
	}
	return string(b)
}
