// Package checker runs concurrent catalog and grant clients against a
// process testnet while faults are injected, records every call (call and
// return times, inputs, outputs, and unknown outcomes: a write that timed
// out or came back UNAVAILABLE may or may not have been applied), and
// checks the history for linearizability with porcupine, one model per
// dataset and per grant. It also reports acknowledged writes lost and each
// fault's unavailability window.
package checker

import (
	"fmt"
	"hash/fnv"

	"github.com/anishathalye/porcupine"
)

// Kind is an operation kind.
type Kind string

const (
	Publish Kind = "publish" // dataset key, value
	Update  Kind = "update"  // dataset key, expected version, value
	Get     Kind = "get"     // dataset key, linearizable (a list is split into one get per key)
	Approve Kind = "approve" // grant key
	Revoke  Kind = "revoke"  // grant key
	GetGrnt Kind = "get-grant"
)

// Result is how a call ended.
type Result string

const (
	OK       Result = "ok"
	Exists   Result = "already-exists"
	Conflict Result = "conflict" // version conflict / state conflict
	NotFound Result = "not-found"
	Unknown  Result = "unknown"  // may or may not have taken effect
	Rejected Result = "rejected" // refused before reaching the log (invalid, denied): no effect
)

// Input is what an operation asked.
type Input struct {
	Kind     Kind   `json:"kind"`
	Key      string `json:"key"`
	Value    string `json:"value,omitempty"`
	Expected uint64 `json:"expected,omitempty"`
	Node     string `json:"node"`
}

// Output is what it got.
type Output struct {
	Result  Result `json:"result"`
	Version uint64 `json:"version,omitempty"`
	Value   string `json:"value,omitempty"` // dataset title, or grant state
}

// dsState is one dataset's state in the model.
type dsState struct {
	exists  bool
	version uint64
	value   string
}

// Grant states in the model (a grant enters the history once requested).
const (
	grantRequested = "REQUESTED"
	grantApproved  = "APPROVED"
	grantRevoked   = "REVOKED"
)

// state is a key's state: a dataset or a grant.
type state struct {
	ds    dsState
	grant string
}

// step is the sequential specification of the catalog for one key.
func step(st, in, out any) (bool, any) {
	s, i, o := st.(state), in.(Input), out.(Output)
	if o.Result == Rejected {
		return true, s
	}
	switch i.Kind {
	case Publish:
		return stepPublish(s, i, o)
	case Update:
		return stepUpdate(s, i, o)
	case Get:
		if o.Result == NotFound {
			return !s.ds.exists, s
		}
		return o.Result == OK && s.ds.exists && s.ds.version == o.Version && s.ds.value == o.Value, s
	case Approve, Revoke:
		return stepDecide(s, i, o)
	case GetGrnt:
		return o.Result == OK && o.Value == s.grant, s
	}
	return false, s
}

func stepPublish(s state, i Input, o Output) (bool, any) {
	next := state{ds: dsState{exists: true, version: 1, value: i.Value}}
	switch o.Result {
	case OK:
		return !s.ds.exists && o.Version == 1, next
	case Exists:
		return s.ds.exists, s
	case Unknown:
		if s.ds.exists {
			return true, s
		}
		return true, next
	}
	return false, s
}

func stepUpdate(s state, i Input, o Output) (bool, any) {
	applies := s.ds.exists && s.ds.version == i.Expected
	next := state{ds: dsState{exists: true, version: i.Expected + 1, value: i.Value}}
	switch o.Result {
	case OK:
		return applies && o.Version == i.Expected+1, next
	case Conflict:
		return s.ds.exists && !applies, s
	case NotFound:
		return !s.ds.exists, s
	case Unknown:
		if applies {
			return true, next
		}
		return true, s
	}
	return false, s
}

func stepDecide(s state, i Input, o Output) (bool, any) {
	from, to := []string{grantRequested}, grantApproved
	if i.Kind == Revoke {
		from, to = []string{grantRequested, grantApproved}, grantRevoked
	}
	applies := false
	for _, f := range from {
		applies = applies || s.grant == f
	}
	next := state{grant: to}
	switch o.Result {
	case OK:
		return applies, next
	case Conflict:
		return !applies, s
	case Unknown:
		if applies {
			return true, next
		}
		return true, s
	}
	return false, s
}

// Model is the porcupine model: one independent register-like object per
// key (dataset id or grant id), checked separately.
func Model() porcupine.Model {
	return porcupine.Model{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			var keys []string
			for _, op := range h {
				k := op.Input.(Input).Key
				if _, ok := byKey[k]; !ok {
					keys = append(keys, k)
				}
				byKey[k] = append(byKey[k], op)
			}
			out := make([][]porcupine.Operation, 0, len(keys))
			for _, k := range keys {
				out = append(out, byKey[k])
			}
			return out
		},
		Init:  func() any { return state{grant: grantRequested} },
		Step:  step,
		Equal: func(a, b any) bool { return a.(state) == b.(state) },
		Hash: func(st any) uint64 {
			s := st.(state)
			h := fnv.New64a()
			fmt.Fprintf(h, "%v|%d|%s|%s", s.ds.exists, s.ds.version, s.ds.value, s.grant)
			return h.Sum64()
		},
		DescribeOperation: func(in, out any) string {
			i, o := in.(Input), out.(Output)
			s := fmt.Sprintf("%s %s @%s", i.Kind, i.Key, i.Node)
			if i.Kind == Update {
				s += fmt.Sprintf(" exp=%d", i.Expected)
			}
			if i.Value != "" {
				s += " " + i.Value
			}
			return s + fmt.Sprintf(" → %s v%d %s", o.Result, o.Version, o.Value)
		},
		DescribeState: func(st any) string {
			s := st.(state)
			if s.ds.exists {
				return fmt.Sprintf("v%d %s", s.ds.version, s.ds.value)
			}
			return "grant " + s.grant + " / no dataset"
		},
	}
}
