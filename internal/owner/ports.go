package owner

import (
	"context"
	"crypto/ed25519"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/diffcheck"
	"github.com/yrd-exchange/yrdnode/internal/ledger"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The ports: what the pipeline needs from the node around it. Each is a
// contract the node's adapter (node/owner.go) keeps and a test's fake can
// keep in a few lines.

// Catalog reads the replicated catalog. The caller makes the replica
// current before Execute (a linearizable read barrier), so a grant
// revoked anywhere a moment ago is seen.
type Catalog interface {
	// Dataset returns the dataset with id, or false if there is none.
	Dataset(id string) (*yrdv1.Dataset, bool)
	// Grants lists the grants of every state on dataset datasetID to
	// organisation org; the policy decides which of them count.
	Grants(datasetID, org string) ([]*yrdv1.Grant, error)
	// PrivacySpent is the epsilon that org of city has spent in year on
	// the datasets of budget family.
	PrivacySpent(city, org string, year int, family string) (float64, error)
}

// Policy gives the policy parameters in force: the catalog's, or the
// built-in defaults when none were ever set.
type Policy interface {
	Params() (*yrdv1.PolicyParams, error)
}

// AuditLog is this node's audit trail.
type AuditLog interface {
	// Append writes rec durably (fsynced) and returns it with its
	// sequence number. An error means rec is not on record, so the query
	// is refused with that error: it must be fit for the requester (of
	// kind errkind.Unavailable).
	Append(ctx context.Context, rec *yrdv1.AuditRecord) (*yrdv1.AuditRecord, error)
	// Enqueue queues rec to be written without waiting for its fsync: the
	// release record, once the result has gone.
	Enqueue(ctx context.Context, rec *yrdv1.AuditRecord) error
}

// Budget spends privacy budget in the replicated catalog, so every node
// sees the same balance.
type Budget interface {
	// Spend charges s and returns what is left of the budget. If the
	// charge would overdraw the budget nothing is spent and the error is
	// of kind errkind.Exhausted.
	Spend(ctx context.Context, s Spend) (remaining float64, err error)
}

// Spend is one charge to a requesting organisation's privacy budget.
type Spend struct {
	RequesterCity, RequesterOrg string
	Year                        int
	Epsilon                     float64
	DatasetID, Family           string
}

// Engines finds the engine of a dataset's local data.
type Engines interface {
	// Engine returns the engine configured for dataset id, or nil; a
	// configured engine may still not serve it (Engine.Serving).
	Engine(id string) connector.Engine
}

// ExportLedger counts, per exporting organisation and year, the
// individuals whose data left the mainland. *ledger.Ledger is one.
type ExportLedger interface {
	// Count is how many individuals of kind k org has sent out in year.
	Count(org string, year int, k ledger.Kind) (uint64, error)
	// Preview is Count and how many of persons would be new to it,
	// recording nothing.
	Preview(org string, year int, k ledger.Kind, persons []string) (total, fresh uint64, err error)
	// Record adds persons unless the total would pass limit (then
	// ledger.ErrLimit, and nothing is recorded).
	Record(org string, year int, k ledger.Kind, persons []string, limit uint64) (total, added uint64, err error)
}

// DifferenceCheck remembers the individuals behind the aggregate groups
// released to each organisation and refuses groups too close to earlier
// ones. *diffcheck.Store is one.
type DifferenceCheck interface {
	Release(scope diffcheck.Scope, scheme string, k uint32, groups []*diffcheck.Sketch, now time.Time) (diffcheck.Outcome, error)
}

// Secrets holds the node's keys.
type Secrets interface {
	// Derive returns a node-local key for purpose and parts: the same
	// arguments give the same key on this node, and no other node has it.
	Derive(purpose string, parts ...string) ([]byte, error)
	// SigningKey is the node's identity key, which signs receipts.
	SigningKey() (ed25519.PrivateKey, error)
}

// Metrics counts the pipeline's outcomes for the node's monitoring.
type Metrics interface {
	// Decided counts one decided query on a dataset of level for a
	// requester of requesterCity, by its final effect: a query the policy
	// allowed and a later stage refused (the budget, an export threshold)
	// counts as a denial.
	Decided(effect yrdv1.Effect, level yrdv1.ClassificationLevel, requesterCity string)
}

// Ports are the node's parts the Executor uses; every one is required but
// Metrics (nil counts nothing).
type Ports struct {
	Catalog    Catalog
	Policy     Policy
	Audit      AuditLog
	Budget     Budget
	Engines    Engines
	Exports    ExportLedger
	Difference DifferenceCheck
	Secrets    Secrets
	Metrics    Metrics
}

// Config is what the Executor knows of the node it runs on.
type Config struct {
	// City is the city this node serves: it owns the datasets of City.
	City string
	// Node is the node's peer id, named in plans and receipts.
	Node string
	// MaxResultBytes caps the wire size of one result.
	MaxResultBytes int64
}
