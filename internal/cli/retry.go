package cli

import (
	"context"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The node's marks on an UNAVAILABLE write (node.ErrorDomain and its
// reasons; the cli does not import node for three strings).
const (
	errorDomain          = "yrd.v1"
	reasonNotApplied     = "NOT_APPLIED"
	reasonOutcomeUnknown = "OUTCOME_UNKNOWN"
)

// readMethods change nothing, so any UNAVAILABLE answer may be retried.
// Everything else is a write (a query too: it spends privacy budget) and is
// retried only when it surely was not applied, or when it cannot apply
// twice (versionedWrite).
var readMethods = map[string]bool{
	"/yrd.v1.CatalogService/GetDataset":    true,
	"/yrd.v1.CatalogService/ListDatasets":  true,
	"/yrd.v1.ClusterService/Status":        true,
	"/yrd.v1.AuthService/ListAPIKeys":      true,
	"/yrd.v1.AuthService/ListCertificates": true,
	"/yrd.v1.AuthService/WhoAmI":           true,
	"/yrd.v1.GrantService/GetGrant":        true,
	"/yrd.v1.GrantService/ListGrants":      true,
	"/yrd.v1.PolicyService/GetPolicy":      true,
	"/yrd.v1.PolicyService/GetUsage":       true,
	"/yrd.v1.AuditService/ListAudit":       true,
	"/yrd.v1.AuditService/VerifyAudit":     true,
}

// versionedWrite reports whether req can apply at most once however often
// it is sent: the catalog refuses it once the version it names has moved.
func versionedWrite(req any) bool {
	switch r := req.(type) {
	case *yrdv1.UpdateDatasetRequest:
		return r.GetExpectedVersion() > 0
	case *yrdv1.RetireDatasetRequest:
		return r.GetExpectedVersion() > 0
	}
	return false
}

// retryPolicy bounds the retries of one call: exponential backoff from
// first to most, at most attempts tries, all within the call's deadline.
type retryPolicy struct {
	first, most time.Duration
	attempts    int
}

// A failover takes one to a few seconds; the call's deadline (--timeout,
// 10 s by default) ends the retries long before the attempts run out.
var defaultRetry = retryPolicy{first: 100 * time.Millisecond, most: time.Second, attempts: 20}

// retryable says whether a call that failed with err may be sent again.
func retryable(method string, req any, err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable || quorumLost(st) {
		return false // only an operator brings a lost quorum back
	}
	if certProblem(st.Message()) != "" {
		return false // a certificate that does not verify will not start to
	}
	if readMethods[method] {
		return true
	}
	switch outcomeOf(st) {
	case reasonNotApplied:
		return true
	case reasonOutcomeUnknown:
		return versionedWrite(req)
	}
	// No mark: the node itself could not be reached. A failed dial sent
	// nothing; anything else (a connection that broke mid-call) may have
	// delivered the write.
	return neverSent(st) || versionedWrite(req)
}

// neverSent: grpc-go words a failure to connect (dial or handshake), after
// which nothing was sent, "connection error: desc = ...".
func neverSent(st *status.Status) bool {
	return strings.HasPrefix(st.Message(), "connection error: desc = ")
}

// quorumLost: the node knows no leader and reaches too few voters to
// elect one (node.MetaQuorum); only an operator changes that, so a retry
// would just wait out the deadline.
func quorumLost(st *status.Status) bool {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errorDomain {
			return info.GetMetadata()["quorum"] == "lost"
		}
	}
	return false
}

func outcomeOf(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errorDomain {
			return info.GetReason()
		}
	}
	return ""
}

// interceptor resends unary calls that retryable allows, with bounded
// backoff, until one answers, the policy's attempts are spent or the
// call's context ends. The last error is returned as it came.
func (p retryPolicy) interceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	wait := p.first
	unknown := false // an earlier attempt may have applied the write
	for attempt := 1; ; attempt++ {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if unknown && status.Code(err) == codes.FailedPrecondition {
			// A versioned write resent after an attempt with an unknown
			// outcome: the conflict may be that attempt's own doing.
			return status.Errorf(codes.FailedPrecondition, "%s (an earlier attempt met a leader change and may itself have made this change; check the current version)", status.Convert(err).Message())
		}
		if err == nil || attempt >= p.attempts || !retryable(method, req, err) {
			return err
		}
		if st := status.Convert(err); !readMethods[method] && outcomeOf(st) != reasonNotApplied && !neverSent(st) {
			unknown = true
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, p.most)
	}
}
