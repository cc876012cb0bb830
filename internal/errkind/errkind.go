// Package errkind holds the kinds of domain error that the node's services
// and the owner's query pipeline return, so both can name them without one
// importing the other. A kind is a sentinel: errors.Is(err, errkind.Invalid)
// says what went wrong in terms a client understands; node/errors.go is the
// one place that turns a kind into a gRPC status code.
//
// The package imports nothing from this module, so any package may use it.
package errkind

import (
	"errors"
	"fmt"
)

// The kinds.
var (
	Invalid            = errors.New("invalid argument")
	NotFound           = errors.New("not found")
	AlreadyExists      = errors.New("already exists")
	Conflict           = errors.New("version conflict")
	PermissionDenied   = errors.New("permission denied")
	Unauthenticated    = errors.New("unauthenticated")
	Unavailable        = errors.New("unavailable")
	Exhausted          = errors.New("resource exhausted")
	FailedPrecondition = errors.New("failed precondition")
	Internal           = errors.New("internal error")
)

// kindError is a message meant for the client, of one kind. Its text is
// the message alone: the kind shows in the status code, not the text.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Errorf returns an error of kind whose text is the formatted message.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
