package node

import (
	"os"
	"sync"
)

// UnsafeStaleReadsEnv names the environment variable that, set to 1, makes
// a follower answer reads that ask for linearizability from its local
// replica without a read barrier — stale, while claiming otherwise. It is
// for tests only: it exists so that the chaos checker (testnet/checker)
// can show it catches a node that breaks linearizability. Off by default;
// never set it on a real node.
const UnsafeStaleReadsEnv = "YRDNODE_UNSAFE_STALE_READS_TEST_ONLY"

// unsafeStaleReads says whether this process runs in that broken mode.
var unsafeStaleReads = sync.OnceValue(func() bool { return os.Getenv(UnsafeStaleReadsEnv) == "1" })
