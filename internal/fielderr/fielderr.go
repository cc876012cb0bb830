// Package fielderr reports problems with fields of a message, by their
// proto field paths, so every validator names what is wrong the same way.
package fielderr

import "strings"

// FieldError is one problem with one field. Field is a path in proto field
// names, such as "schema.columns[2].type" or "group_by[1]"; it is empty
// when the problem is with the message as a whole.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Errors is every problem a validator found, in field order.
type Errors []*FieldError

func (e Errors) Error() string {
	msgs := make([]string, len(e))
	for i, fe := range e {
		msgs[i] = fe.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap lets errors.As find the individual *FieldError values.
func (e Errors) Unwrap() []error {
	errs := make([]error, len(e))
	for i, fe := range e {
		errs[i] = fe
	}
	return errs
}
