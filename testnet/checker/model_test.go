package checker

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// at builds an op from call to ret (in ms from t0); ret < 0 is unknown.
func at(client, call, ret int, in Input, out Output) Op {
	t0 := time.Unix(1000, 0)
	op := Op{Client: client, In: in, Out: out, Call: t0.Add(time.Duration(call) * time.Millisecond)}
	if ret >= 0 {
		op.Return = t0.Add(time.Duration(ret) * time.Millisecond)
	}
	return op
}

func check(t *testing.T, ops []Op) porcupine.CheckResult {
	t.Helper()
	return porcupine.CheckOperationsTimeout(Model(), porcupineHistory(ops), 10*time.Second)
}

// TestModelUnknownWriteMayOrMayNotApply: a write with an unknown outcome
// may be seen later, or never.
func TestModelUnknownWriteMayOrMayNotApply(t *testing.T) {
	pub := at(0, 0, 10, Input{Kind: Publish, Key: "k", Value: "a"}, Output{Result: OK, Version: 1, Value: "a"})
	upd := at(1, 20, -1, Input{Kind: Update, Key: "k", Expected: 1, Value: "b"}, Output{Result: Unknown})
	seen := at(2, 100, 110, Input{Kind: Get, Key: "k"}, Output{Result: OK, Version: 2, Value: "b"})
	unseen := at(2, 100, 110, Input{Kind: Get, Key: "k"}, Output{Result: OK, Version: 1, Value: "a"})
	if r := check(t, []Op{pub, upd, seen}); r != porcupine.Ok {
		t.Errorf("unknown update seen: %s", r)
	}
	if r := check(t, []Op{pub, upd, unseen}); r != porcupine.Ok {
		t.Errorf("unknown update not seen: %s", r)
	}
	// But once seen it cannot be unseen.
	later := at(3, 200, 210, Input{Kind: Get, Key: "k"}, Output{Result: OK, Version: 1, Value: "a"})
	if r := check(t, []Op{pub, upd, seen, later}); r != porcupine.Illegal {
		t.Errorf("a read going back in time passed: %s", r)
	}
}

// TestModelStaleReadIllegal: a read after an acknowledged update must not
// return the old value; grants must not go back from REVOKED.
func TestModelStaleReadIllegal(t *testing.T) {
	ops := []Op{
		at(0, 0, 10, Input{Kind: Publish, Key: "k", Value: "a"}, Output{Result: OK, Version: 1, Value: "a"}),
		at(0, 20, 30, Input{Kind: Update, Key: "k", Expected: 1, Value: "b"}, Output{Result: OK, Version: 2, Value: "b"}),
		at(1, 40, 50, Input{Kind: Get, Key: "k"}, Output{Result: OK, Version: 1, Value: "a"}),
	}
	if r := check(t, ops); r != porcupine.Illegal {
		t.Errorf("stale read: %s", r)
	}
	grants := []Op{
		at(0, 0, 10, Input{Kind: Approve, Key: "g"}, Output{Result: OK, Value: grantApproved}),
		at(0, 20, 30, Input{Kind: Revoke, Key: "g"}, Output{Result: OK, Value: grantRevoked}),
		at(1, 40, 50, Input{Kind: GetGrnt, Key: "g"}, Output{Result: OK, Value: grantApproved}),
	}
	if r := check(t, grants); r != porcupine.Illegal {
		t.Errorf("revoked grant read as approved: %s", r)
	}
	if r := check(t, grants[:2]); r != porcupine.Ok {
		t.Errorf("approve then revoke: %s", r)
	}
}
