package node

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/grpc/credentials"
	grpcpeer "google.golang.org/grpc/peer"

	"github.com/yrd-exchange/yrdnode/internal/auth"
	"github.com/yrd-exchange/yrdnode/internal/fabric"
	"github.com/yrd-exchange/yrdnode/internal/owner"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/store"
)

// Rule ids of the refusals that no policy decision names: credentials,
// roles, ownership, limits, the fabric gate and joins (the policy's own
// ids are in internal/policy). Auditors filter on them (`audit list
// --rule`), so they never change; README's Audit section lists them.
const (
	RuleNoCredentials      = "auth.no-credentials"
	RuleBadKey             = "auth.bad-key"
	RuleRevokedKey         = "auth.revoked-key"
	RuleBadCertificate     = "auth.bad-certificate"
	RuleRevokedCertificate = "auth.revoked-certificate"

	RuleRoleMethod          = "role.method"
	RuleDatasetOtherOrg     = "dataset.other-organisation"
	RuleGrantOtherOrg       = "grant.other-organisation"
	RuleUsageOtherOrg       = "usage.other-organisation"
	RuleCredentialOtherCity = "credential.other-city"
	RuleConcurrentQuery     = "limit.concurrent-queries"
	RuleResultSize          = owner.RuleResultSize
	RuleBudgetExhausted     = owner.RuleBudgetExhausted
	RuleFabricNonMember     = "fabric.non-member"
	RuleJoinTokenUsed       = "join.token-used"
	RuleJoinTokenExpired    = "join.token-expired"
	RuleJoinTokenUnknown    = "join.token-unknown"
	RuleJoinWrongCity       = "join.token-wrong-city"
	RuleJoinBadSignature    = "join.bad-signature"
	RuleJoinRefused         = "join.refused"
)

var authRules = map[auth.Refusal]string{
	auth.RefusedNoCredentials:      RuleNoCredentials,
	auth.RefusedBadKey:             RuleBadKey,
	auth.RefusedRevokedKey:         RuleRevokedKey,
	auth.RefusedBadCertificate:     RuleBadCertificate,
	auth.RefusedRevokedCertificate: RuleRevokedCertificate,
}

// auditRefused records a refusal of an authenticated principal (or of a
// query it asked for): one DENY record per refusal, like a denied
// decision. Failures are only logged: the request is refused either way.
func (n *Node) auditRefused(ctx context.Context, rule string, rec *yrdv1.AuditRecord) {
	rec.Decision = yrdv1.Effect_EFFECT_DENY
	rec.RuleIds = append(rec.RuleIds, rule)
	_, _ = n.audit(ctx, rec)
}

// Refusals that anyone can cause without credentials go through the
// summariser (internal/audit.Summariser): per source and minute one record
// at once and one summary, so a flood neither fills the disk nor waits on
// it.

// noteRefusal counts a refusal anyone can cause and hands it to the
// summariser.
func (n *Node) noteRefusal(source, rule string, rec *yrdv1.AuditRecord) {
	n.metrics.countDenial([]string{rule}, 1)
	n.refusals.Note(source, rule, rec)
}

// noteAuthRefusal records a client API call refused for its credentials.
func (n *Node) noteAuthRefusal(ctx context.Context, method string, err error) {
	why, p, _ := auth.RefusalOf(err)
	rule, ok := authRules[why]
	if !ok {
		rule = RuleBadKey
	}
	n.noteRefusal(clientSource(ctx), rule, &yrdv1.AuditRecord{Action: yrdv1.AuditAction_AUDIT_ACTION_AUTHENTICATE,
		Requester: p, Detail: method + ": " + err.Error(), RequestId: requestIDOf(ctx)})
}

// clientSource is what a client API refusal is summarised by: the
// caller's IP address (its port changes with every connection).
func clientSource(ctx context.Context) string {
	p, ok := grpcpeer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "unknown address"
	}
	return addrHost(p.Addr)
}

func addrHost(a net.Addr) string {
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// refusingTLS is the client API's TLS, which also puts on record a client
// certificate that fails verification in the handshake (another CA's, an
// expired one): that caller never reaches an RPC to be refused at.
type refusingTLS struct {
	credentials.TransportCredentials
	n *Node
}

func (c refusingTLS) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	out, info, err := c.TransportCredentials.ServerHandshake(conn)
	var bad *tls.CertificateVerificationError
	if errors.As(err, &bad) {
		c.n.noteRefusal(addrHost(conn.RemoteAddr()), RuleBadCertificate, &yrdv1.AuditRecord{
			Action: yrdv1.AuditAction_AUDIT_ACTION_AUTHENTICATE, Detail: "TLS handshake: client certificate refused: " + err.Error()})
	}
	return out, info, err
}

func (c refusingTLS) Clone() credentials.TransportCredentials {
	return refusingTLS{c.TransportCredentials.Clone(), c.n}
}

// noteFabricRefusal records a connection or stream the fabric gate
// refused. A member refused only by the fault-injection filter
// (SetPeerFilter) is no refusal to record.
func (n *Node) noteFabricRefusal(f fabric.Refusal) {
	if n.registered(f.Peer) {
		return
	}
	what := "connection"
	if f.Stream {
		what = "stream"
	}
	from := "an unknown address"
	if f.Remote != nil {
		from = f.Remote.String()
	}
	n.noteRefusal(f.Peer.String(), RuleFabricNonMember, &yrdv1.AuditRecord{Action: yrdv1.AuditAction_AUDIT_ACTION_PEER_CONNECT,
		Detail: what + " from non-member peer " + f.Peer.String() + " at " + from + " refused"})
}

// registered: id is in the member registry or a seed of a join.
func (n *Node) registered(id peer.ID) bool {
	if _, ok := n.catalog.Member(id.String()); ok {
		return true
	}
	n.seedMu.RLock()
	defer n.seedMu.RUnlock()
	return n.seeds[id]
}

// noteJoinRefusal records a refused ClusterService.Join under rule.
func (n *Node) noteJoinRefusal(ctx context.Context, req *yrdv1.JoinRequest, rule string, err error) {
	n.noteRefusal(clientSource(ctx), rule, &yrdv1.AuditRecord{Action: yrdv1.AuditAction_AUDIT_ACTION_JOIN,
		Detail: "join of " + req.GetCity() + " (peer " + req.GetPeerId() + "): " + err.Error(), RequestId: requestIDOf(ctx)})
}

// joinTokenRule names why the catalog refused req's token. The catalog
// decides (consensus/apply.go, on the leader); the token's record in this
// replica, made current by a read barrier, says why, in the same order of
// checks. A token only ever moves from unused to used and from valid to
// expired (then is deleted), so the record read after the refusal still
// shows its reason.
func (n *Node) joinTokenRule(ctx context.Context, req *yrdv1.JoinRequest) string {
	_ = n.readBarrier(ctx, yrdv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE) // best effort: stale is still telling
	t, err := n.catalog.JoinToken(hashToken(req.GetToken()))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return RuleJoinTokenUnknown
	case err != nil:
		return RuleJoinRefused
	case t.GetRedeemedBy() != "":
		return RuleJoinTokenUsed
	case !time.Now().Before(t.GetExpiresAt().AsTime()):
		return RuleJoinTokenExpired
	case t.GetCity() != "" && t.GetCity() != req.GetCity():
		return RuleJoinWrongCity
	}
	return RuleJoinRefused
}
