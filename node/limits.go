package node

import (
	"context"
	"sync"

	"github.com/yrd-exchange/yrdnode/internal/auth"
	"github.com/yrd-exchange/yrdnode/internal/receipt"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// queryLimiter bounds the queries one principal runs on this node at once,
// so one requester cannot take every connection to the city's database.
type queryLimiter struct {
	max     int
	mu      sync.Mutex
	running map[string]int
}

func newQueryLimiter(max int) *queryLimiter {
	return &queryLimiter{max: max, running: map[string]int{}}
}

// acquire takes a slot for p or fails with ResourceExhausted; call the
// returned func when the query ends.
func (l *queryLimiter) acquire(p *yrdv1.Principal) (release func(), err error) {
	who := auth.String(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running[who] >= l.max {
		return nil, errorf(ErrExhausted, "%s already has %d queries running on this node, the most allowed; wait for one to finish", who, l.max)
	}
	l.running[who]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.running[who]--; l.running[who] == 0 {
			delete(l.running, who)
		}
	}, nil
}

// acquireQuery takes a query slot for p (acquire), putting a refusal on
// record: the query never reaches a decision that would record it.
func (n *Node) acquireQuery(ctx context.Context, p *yrdv1.Principal, q *yrdv1.Query) (release func(), err error) {
	release, err = n.queries.acquire(p)
	if err != nil {
		detail := err.Error()
		if fam := q.GetFamily(); fam != "" {
			detail = "family " + fam + ": " + detail
		}
		n.auditRefused(ctx, RuleConcurrentQuery, &yrdv1.AuditRecord{Requester: p, Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY,
			DatasetId: q.GetDatasetId(), QueryFingerprint: receipt.Fingerprint(q), Detail: detail})
	}
	return release, err
}
