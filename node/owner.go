package node

import (
	"context"
	"crypto/ed25519"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/owner"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/store"
)

// openOwner builds the owner's query pipeline (internal/owner) from the
// node's parts, once its catalog, audit log and local data are open.
func (n *Node) openOwner() {
	p := ownerPorts{n}
	exports := countingLedger{n.data.exports, n.metrics.exported}
	n.owner = owner.New(owner.Config{City: n.cfg.City, Node: n.id.String(), MaxResultBytes: n.cfg.MaxResultBytes},
		owner.Ports{Catalog: p, Policy: p, Audit: p, Budget: p, Engines: p, Exports: exports, Difference: n.data.differ, Secrets: p,
			Metrics: n.metrics})
}

// ownerPorts is the node as the owner's pipeline sees it: each method
// keeps the contract of one of internal/owner's ports.
type ownerPorts struct{ n *Node }

func (o ownerPorts) Dataset(id string) (*yrdv1.Dataset, bool) { return o.n.catalog.GetDataset(id) }

func (o ownerPorts) Grants(datasetID, org string) ([]*yrdv1.Grant, error) {
	return o.n.catalog.ListGrants(store.GrantFilter{DatasetID: datasetID, RequesterOrg: org})
}

func (o ownerPorts) PrivacySpent(city, org string, year int, family string) (float64, error) {
	return o.n.catalog.PrivacySpent(city, org, year, family)
}

func (o ownerPorts) Params() (*yrdv1.PolicyParams, error) { return o.n.currentPolicy() }

func (o ownerPorts) Append(ctx context.Context, rec *yrdv1.AuditRecord) (*yrdv1.AuditRecord, error) {
	return o.n.audit(ctx, rec)
}

func (o ownerPorts) Enqueue(ctx context.Context, rec *yrdv1.AuditRecord) error {
	stampRequestID(ctx, rec)
	return o.n.auditLog.Enqueue(ctx, rec)
}

// Spend charges the privacy budget through raft, so every node sees the
// same balance; the catalog refuses an overdraft as ERROR_CODE_EXHAUSTED,
// which resultError makes ErrExhausted.
func (o ownerPorts) Spend(ctx context.Context, s owner.Spend) (float64, error) {
	res, err := o.n.propose(ctx, &yrdv1.Command{Op: &yrdv1.Command_SpendPrivacyBudget{SpendPrivacyBudget: &yrdv1.SpendPrivacyBudgetCommand{
		RequesterCity: s.RequesterCity, RequesterOrg: s.RequesterOrg, Year: int32(s.Year), Epsilon: s.Epsilon, DatasetId: s.DatasetID,
		Family: s.Family}}})
	if err != nil {
		return 0, err
	}
	o.n.metrics.budgetSpent.WithLabelValues(s.RequesterCity, s.RequesterOrg).Add(s.Epsilon)
	return res.GetBudgetRemaining(), nil
}

// Engine is the dataset's engine with its queries timed.
func (o ownerPorts) Engine(id string) connector.Engine {
	eng := o.n.engineFor(id)
	if eng == nil {
		return nil
	}
	return timedEngine{eng, o.n.metrics.engineSeconds.WithLabelValues(id)}
}

func (o ownerPorts) Derive(purpose string, parts ...string) ([]byte, error) {
	return o.n.secret(purpose, parts...)
}

func (o ownerPorts) SigningKey() (ed25519.PrivateKey, error) { return o.n.signingKey() }
