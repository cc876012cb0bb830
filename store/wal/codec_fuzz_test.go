package wal

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// FuzzDecodeLog feeds arbitrary bytes to the raft log decoder, which reads
// what is on disk: it must reject garbage with an error, never panic, and
// whatever it accepts must survive an encode/decode round trip unchanged.
func FuzzDecodeLog(f *testing.F) {
	for _, l := range []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("publish")},
		{Index: 1 << 40, Term: 7, Type: raft.LogConfiguration, Data: bytes.Repeat([]byte{0xff}, 300), Extensions: []byte("x"),
			AppendedAt: time.Unix(1700000000, 123)},
		{Index: 9, Term: 2, Type: raft.LogNoop},
	} {
		f.Add(AppendLog(nil, l))
	}
	f.Add([]byte{})
	f.Add([]byte{logFormatV1, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var l raft.Log
		if err := DecodeLog(data, &l); err != nil {
			return
		}
		var again raft.Log
		if err := DecodeLog(AppendLog(nil, &l), &again); err != nil {
			t.Fatalf("re-encoding %+v gives bytes the decoder rejects: %v", l, err)
		}
		if again.Index != l.Index || again.Term != l.Term || again.Type != l.Type || !bytes.Equal(again.Data, l.Data) ||
			!bytes.Equal(again.Extensions, l.Extensions) || !again.AppendedAt.Equal(l.AppendedAt) {
			t.Fatalf("round trip changed %+v into %+v", l, again)
		}
	})
}
