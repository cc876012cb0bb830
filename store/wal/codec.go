package wal

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// logFormatV1 tags the encoding of a stored raft.Log so the format can
// evolve without guessing.
const logFormatV1 = 1

// Log encoding, all integers as uvarints:
//
//	version(1) index term type len(data) data len(ext) ext hasTime [unixNano]
//
// hasTime distinguishes the zero time (entries written before raft set
// AppendedAt) from the Unix epoch.
func MaxEncodedLogSize(l *raft.Log) int {
	return 1 + 3*binary.MaxVarintLen64 + 1 + 2*binary.MaxVarintLen64 + len(l.Data) + len(l.Extensions) + 1 + binary.MaxVarintLen64
}

func AppendLog(b []byte, l *raft.Log) []byte {
	b = append(b, logFormatV1)
	b = binary.AppendUvarint(b, l.Index)
	b = binary.AppendUvarint(b, l.Term)
	b = append(b, byte(l.Type))
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	b = append(b, l.Extensions...)
	if l.AppendedAt.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	return binary.AppendVarint(b, l.AppendedAt.UnixNano())
}

var ErrCorruptLog = errors.New("corrupt log entry")

// DecodeLog decodes v into l, copying everything out of v (which points
// into bbolt's mmap and is only valid during the transaction).
func DecodeLog(v []byte, l *raft.Log) error {
	if len(v) == 0 || v[0] != logFormatV1 {
		return ErrCorruptLog
	}
	d := decoder{b: v[1:]}
	l.Index = d.uvarint()
	l.Term = d.uvarint()
	l.Type = raft.LogType(d.byte())
	data := d.bytes()
	ext := d.bytes()
	hasTime := d.byte()
	var nanos int64
	if hasTime == 1 {
		nanos = d.varint()
	}
	if d.err || len(d.b) != 0 || hasTime > 1 {
		return ErrCorruptLog
	}
	// One allocation for both slices; cap-limit Data so appending to it
	// cannot overwrite Extensions.
	buf := make([]byte, len(data)+len(ext))
	copy(buf, data)
	copy(buf[len(data):], ext)
	l.Data, l.Extensions = nil, nil
	if len(data) > 0 {
		l.Data = buf[:len(data):len(data)]
	}
	if len(ext) > 0 {
		l.Extensions = buf[len(data):]
	}
	l.AppendedAt = time.Time{}
	if hasTime == 1 {
		l.AppendedAt = time.Unix(0, nanos)
	}
	return nil
}

// decoder reads the log encoding; any short read sets err and yields zero
// values, checked once at the end.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
