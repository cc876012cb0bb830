package node

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/consensus"
	"github.com/yrd-exchange/yrdnode/internal/catalogspec"
	"github.com/yrd-exchange/yrdnode/internal/errkind"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/store"
)

// Domain errors. Handlers return them wrapped with a message; toStatus is
// the one place that turns them into gRPC status codes. They are the kinds
// of internal/errkind, which the owner's pipeline (internal/owner) returns
// too.
var (
	ErrInvalid            = errkind.Invalid
	ErrNotFound           = errkind.NotFound
	ErrAlreadyExists      = errkind.AlreadyExists
	ErrConflict           = errkind.Conflict
	ErrPermissionDenied   = errkind.PermissionDenied
	ErrUnauthenticated    = errkind.Unauthenticated
	ErrUnavailable        = errkind.Unavailable
	ErrExhausted          = errkind.Exhausted
	ErrFailedPrecondition = errkind.FailedPrecondition
	ErrInternal           = errkind.Internal
)

// What a client may do about a write that failed UNAVAILABLE. The status
// carries a google.rpc.ErrorInfo with ErrorDomain and one of these reasons;
// internal/cli retries on them.
const (
	ErrorDomain = "yrd.v1"
	// ReasonNotApplied: the write surely did not enter the raft log (no
	// leader, not the leader, the leader could not be dialled, or the
	// deadline passed before any leader took it). Safe to retry.
	ReasonNotApplied = "NOT_APPLIED"
	// ReasonOutcomeUnknown: the write may or may not commit (leadership
	// was lost after it entered the log, or the connection to the leader
	// broke while it was there). Retry only a write that cannot apply
	// twice, such as an update with an expected version.
	ReasonOutcomeUnknown = "OUTCOME_UNKNOWN"
)

// domainError carries a message meant for the client and a sentinel kind,
// and for an unavailable write, whether it may have been applied.
type domainError struct {
	kind    error
	msg     string
	outcome string            // "", ReasonNotApplied or ReasonOutcomeUnknown
	meta    map[string]string // the ErrorInfo's metadata, with outcome
}

func (e *domainError) Error() string { return e.msg }
func (e *domainError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &domainError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

var codeKinds = map[yrdv1.ErrorCode]error{
	yrdv1.ErrorCode_ERROR_CODE_INVALID:           ErrInvalid,
	yrdv1.ErrorCode_ERROR_CODE_NOT_FOUND:         ErrNotFound,
	yrdv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS:    ErrAlreadyExists,
	yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT:  ErrConflict,
	yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED: ErrPermissionDenied,
	yrdv1.ErrorCode_ERROR_CODE_NOT_LEADER:        ErrUnavailable,
	yrdv1.ErrorCode_ERROR_CODE_UNAVAILABLE:       ErrUnavailable,
	yrdv1.ErrorCode_ERROR_CODE_EXHAUSTED:         ErrExhausted,
}

// resultError turns a command's domain outcome into an error, or nil.
func resultError(res *yrdv1.CommandResult) error {
	if res.GetErrorCode() == yrdv1.ErrorCode_ERROR_CODE_UNSPECIFIED {
		return nil
	}
	kind, ok := codeKinds[res.GetErrorCode()]
	if !ok {
		kind = ErrUnavailable
	}
	return &domainError{kind: kind, msg: res.GetErrorMessage()}
}

var kindCodes = []struct {
	kind error
	code codes.Code
}{
	{ErrInvalid, codes.InvalidArgument},
	{ErrNotFound, codes.NotFound},
	{ErrAlreadyExists, codes.AlreadyExists},
	{ErrConflict, codes.FailedPrecondition},
	{ErrPermissionDenied, codes.PermissionDenied},
	{ErrUnauthenticated, codes.Unauthenticated},
	{ErrUnavailable, codes.Unavailable},
	{ErrExhausted, codes.ResourceExhausted},
	{ErrFailedPrecondition, codes.FailedPrecondition},
	{ErrInternal, codes.Internal},
	{consensus.ErrNotLeader, codes.Unavailable},
	{consensus.ErrNoLeader, codes.Unavailable},
	{consensus.ErrLeadershipLost, codes.Unavailable},
	{consensus.ErrClosed, codes.Unavailable},
	{consensus.ErrStorageFailed, codes.Unavailable},
	{store.ErrInvalidPageToken, codes.InvalidArgument},
	{store.ErrNotFound, codes.NotFound},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// notApplied marks an unavailable write that surely did not enter the log.
func notApplied(format string, args ...any) error {
	return &domainError{kind: ErrUnavailable, msg: fmt.Sprintf(format, args...), outcome: ReasonNotApplied}
}

// outcomeUnknown marks an unavailable write that may or may not commit.
func outcomeUnknown(format string, args ...any) error {
	return &domainError{kind: ErrUnavailable, msg: fmt.Sprintf(format, args...), outcome: ReasonOutcomeUnknown}
}

// outcomeOf says whether err is a write that surely was not applied, one
// whose outcome is unknown, or neither ("").
func outcomeOf(err error) string {
	var de *domainError
	switch {
	case errors.As(err, &de) && de.outcome != "":
		return de.outcome
	case errors.Is(err, consensus.ErrLeadershipLost):
		return ReasonOutcomeUnknown
	case errors.Is(err, consensus.ErrNotLeader), errors.Is(err, consensus.ErrNoLeader):
		return ReasonNotApplied
	}
	return ""
}

// toStatus maps any error a handler returns to a gRPC status.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var fieldErrs catalogspec.Errors
	if errors.As(err, &fieldErrs) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	for _, kc := range kindCodes {
		if errors.Is(err, kc.kind) {
			st := status.New(kc.code, err.Error())
			if outcome := outcomeOf(err); outcome != "" && kc.code == codes.Unavailable {
				info := &errdetails.ErrorInfo{Domain: ErrorDomain, Reason: outcome, Metadata: metaOf(err)}
				if withInfo, derr := st.WithDetails(info); derr == nil {
					st = withInfo
				}
			}
			return st.Err()
		}
	}
	return status.Error(codes.Internal, err.Error())
}

// metaOf is the ErrorInfo metadata a domain error carries, or nil.
func metaOf(err error) map[string]string {
	var de *domainError
	if errors.As(err, &de) {
		return de.meta
	}
	return nil
}

// statusOutcome is the ErrorInfo reason a status carries, or "".
func statusOutcome(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info.GetReason()
		}
	}
	return ""
}

// statusMeta is the metadata of the ErrorInfo a status carries, or nil.
func statusMeta(st *status.Status) map[string]string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info.GetMetadata()
		}
	}
	return nil
}

// fromStatus turns a status received from a peer back into a domain error,
// so a forwarded call fails the same way a local one would.
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, kc := range kindCodes {
		if kc.code == st.Code() {
			return &domainError{kind: kc.kind, msg: st.Message(), outcome: statusOutcome(st), meta: statusMeta(st)}
		}
	}
	return err
}
