package archtest

// layout is the module's dependency allow-list: one row per package, keyed
// by its path inside the module, naming the module packages it may import
// directly. A new package gets a row here or TestEveryGoDirectoryIsListed
// fails; a new import of a module package is added to its row on purpose or
// TestDependencyRules fails. The rules in rules_test.go hold whatever the
// rows say: pure packages stay pure, only tests import test-only packages,
// nothing under internal/ but the CLI imports the daemon or the harness.
var layout = map[string]rule{
	// The binary and its commands.
	"cmd/yrdnode":  {imports: "internal/cli"},
	"internal/cli": {imports: "devnet internal/audit internal/auth internal/backupfile internal/catalogspec internal/cities internal/connector internal/receipt internal/resultcodec internal/sample internal/sdnotify internal/sqlq internal/synth node proto/yrd/v1 proto/yrd/v1/yrdv1grpc store testnet/bench testnet/chaos", tests: "internal/pgtest testnet"},

	// The daemon and what it wires together.
	"node":               {imports: "consensus internal/audit internal/auth internal/backupfile internal/catalogspec internal/cities internal/coalesce internal/connector internal/console internal/diffcheck internal/fabric internal/errkind internal/fsutil internal/ledger internal/merge internal/noise internal/owner internal/policy internal/receipt internal/resultcodec internal/sqlq proto/yrd/v1 proto/yrd/v1/yrdv1grpc store store/wal", tests: "internal/pgtest internal/sample internal/synth store/wal/waltest testnet"},
	"consensus":          {imports: "internal/coalesce proto/yrd/v1 store store/wal", tests: "internal/policy internal/sample"},
	"store":              {imports: "proto/yrd/v1 store/wal"},
	"store/wal":          {imports: "internal/fsutil", tests: "store/wal/waltest"},
	"internal/fabric":    {},
	"internal/auth":      {imports: "internal/cities internal/fsutil proto/yrd/v1"},
	"internal/audit":     {imports: "proto/yrd/v1"},
	"internal/console":   {imports: "internal/auth internal/cities proto/yrd/v1 proto/yrd/v1/yrdv1grpc"},
	"internal/ledger":    {},
	"internal/diffcheck": {},
	"internal/owner":     {imports: "internal/connector internal/diffcheck internal/errkind internal/ledger internal/merge internal/noise internal/policy internal/querylang internal/receipt internal/resultcodec proto/yrd/v1", tests: "internal/sqlq internal/synth"},
	"internal/connector": {imports: "internal/querylang proto/yrd/v1", tests: "internal/pgtest internal/sample internal/synth"},

	// Pure packages: computation over values, no I/O stack of their own.
	"internal/policy":      {pure: true, imports: "internal/fielderr internal/querylang proto/yrd/v1", tests: "internal/sample"},
	"internal/merge":       {pure: true, imports: "internal/querylang internal/resultcodec proto/yrd/v1", tests: "internal/connector internal/sample internal/sqlq internal/synth"},
	"internal/receipt":     {pure: true, imports: "internal/resultcodec proto/yrd/v1", libs: libp2pKeys},
	"internal/noise":       {pure: true},
	"internal/querylang":   {pure: true, imports: "proto/yrd/v1"},
	"internal/sqlq":        {pure: true, imports: "internal/catalogspec internal/querylang proto/yrd/v1"},
	"internal/catalogspec": {pure: true, imports: "internal/cities internal/fielderr proto/yrd/v1", tests: "internal/sample"},
	"internal/resultcodec": {pure: true, imports: "proto/yrd/v1", tests: "internal/receipt"},
	"internal/fielderr":    {pure: true},
	"internal/errkind":     {pure: true},
	"internal/cities":      {pure: true},
	"internal/sample":      {pure: true, imports: "proto/yrd/v1", tests: "internal/catalogspec"},
	"internal/synth":       {pure: true, imports: "internal/cities internal/sample proto/yrd/v1", tests: "internal/catalogspec"},
	"internal/coalesce":    {pure: true},
	"proto/yrd/v1":         {pure: true},

	// Small helpers with I/O.
	"internal/fsutil":        {},
	"internal/backupfile":    {},
	"internal/sdnotify":      {},
	"proto/yrd/v1/yrdv1grpc": {imports: "proto/yrd/v1"},

	// Deltas: the dev delta the binary runs, and the process testnets of
	// `yrdnode testnet`.
	"devnet":          {imports: "consensus node proto/yrd/v1 proto/yrd/v1/yrdv1grpc"},
	"testnet/procnet": {imports: "node proto/yrd/v1 proto/yrd/v1/yrdv1grpc"},
	"testnet/chaos":   {imports: "internal/cities internal/synth proto/yrd/v1 proto/yrd/v1/yrdv1grpc testnet/checker testnet/procnet", tests: "internal/sample node"},
	"testnet/checker": {imports: "proto/yrd/v1 proto/yrd/v1/yrdv1grpc"},
	"testnet/bench":   {imports: "internal/sample internal/synth proto/yrd/v1 proto/yrd/v1/yrdv1grpc testnet/chaos", tests: "testnet/procnet"},

	// Test-only: the in-process harness, a throw-away PostgreSQL, a
	// fault-injecting file system for the raft log, and these tests.
	"testnet":           {testOnly: true, imports: "consensus devnet proto/yrd/v1 proto/yrd/v1/yrdv1grpc", tests: "internal/sample internal/synth testnet/procnet"},
	"internal/pgtest":   {testOnly: true},
	"testnet/browser":   {testOnly: true, tests: "internal/connector internal/sample internal/synth node proto/yrd/v1 proto/yrd/v1/yrdv1grpc testnet"},
	"store/wal/waltest": {testOnly: true, imports: "store/wal"},
	"internal/archtest": {testOnly: true},
}

// libp2pKeys are the libp2p packages of key types and peer IDs, which
// receipts are signed and verified with; none of them opens a connection
// (the transitive check in rules_test.go makes sure).
const libp2pKeys = "github.com/libp2p/go-libp2p/core/crypto github.com/libp2p/go-libp2p/core/peer"

// forbidden maps a package to what it must never depend on, directly or
// through anything it imports (prefixes of import paths). Storage and
// consensus stay free of the network stack and of the daemon wiring, so
// they can be tested and reasoned about alone; the raft log (store/wal)
// needs not even bbolt; consensus replays the raft log with values it
// freezes itself, not with the policy engine's.
var forbidden = map[string][]string{
	"store/wal":    {"google.golang.org/grpc", "github.com/libp2p/", "go.etcd.io/bbolt", module + "/node", module + "/consensus", module + "/internal/fabric"},
	"store":        {"google.golang.org/grpc", "github.com/libp2p/", module + "/node", module + "/consensus", module + "/internal/fabric"},
	"consensus":    {"google.golang.org/grpc", "github.com/libp2p/", module + "/node", module + "/internal/fabric", module + "/internal/policy"},
	"proto/yrd/v1": {"google.golang.org/grpc"},
}
