package fabric

import (
	"errors"
	"testing"
	"time"
)

// refusalLog collects what Config.Refused hears, as the node's audit would.
type refusalLog chan Refusal

func (r refusalLog) hook(f Refusal) {
	select {
	case r <- f:
	default: // the hook must never block
	}
}

func (r refusalLog) next(t *testing.T) Refusal {
	t.Helper()
	select {
	case f := <-r:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no refusal reported")
		return Refusal{}
	}
}

func newReportingHost(t *testing.T, gate Gate, refused refusalLog) *Host {
	t.Helper()
	h, err := New(Config{Key: newKey(t), ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Gate: gate, Refused: refused.hook})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// An outsider's inbound connection is reported with its proven peer id and
// address; the member's own refusal to dial it is not an attempt and is
// not reported.
func TestRefusedInboundConnectionIsReported(t *testing.T) {
	refused := make(refusalLog, 16)
	member := newReportingHost(t, newMemberGate(), refused)
	outsider := newTestHost(t, openGate())
	introduce(t, member, outsider)

	if c, err := outsider.Dial(testContext(t), member.ID(), testProto); err == nil {
		c.Close()
	}
	f := refused.next(t)
	if f.Peer != outsider.ID() || f.Remote == nil || f.Stream {
		t.Fatalf("reported %+v, want the outsider's connection from its address", f)
	}
	for len(refused) > 0 { // a dial may retry over several addresses
		<-refused
	}
	if _, err := member.Dial(testContext(t), outsider.ID(), testProto); !errors.Is(err, ErrNotAdmitted) {
		t.Fatalf("member dialing the outsider: %v", err)
	}
	select {
	case f := <-refused:
		t.Fatalf("an outbound refusal was reported: %+v", f)
	default:
	}
}

// A stream of a peer removed while its connection stays up is reported as
// a refused stream.
func TestRefusedStreamIsReported(t *testing.T) {
	refused := make(refusalLog, 16)
	gb := newMemberGate()
	a := newTestHost(t, openGate())
	b := newReportingHost(t, gb, refused)
	gb.add(a.ID())
	introduce(t, a, b)
	lb := b.Listen(testProto)
	accepted := acceptOne(lb)
	ca, err := a.Dial(testContext(t), b.ID(), testProto)
	if err != nil {
		t.Fatal(err)
	}
	ca.Write([]byte("x"))
	recvConn(t, accepted).Close()
	ca.Close()

	gb.remove(a.ID())
	if c, err := a.Dial(testContext(t), b.ID(), testProto); err == nil {
		c.Write([]byte("y"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.Read(make([]byte, 1))
		c.Close()
	}
	if f := refused.next(t); f.Peer != a.ID() || !f.Stream || f.Remote == nil {
		t.Fatalf("reported %+v, want a's stream", f)
	}
}
