package node

import "time"

// The difference check (internal/diffcheck) is the owner pipeline's
// (internal/owner); the node keeps its store and prunes it.

// pruneInterval is how often expired fingerprints are deleted.
const pruneInterval = 24 * time.Hour

// pruneLoop deletes expired fingerprints once a day.
func (n *Node) pruneLoop() {
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		if removed, err := n.data.differ.Prune(time.Now()); err != nil {
			n.log.Warn("pruning expired difference-check fingerprints failed", "err", err)
		} else if removed > 0 {
			n.log.Info("pruned expired difference-check fingerprints", "removed", removed)
		}
		select {
		case <-n.base.Done():
			return
		case <-t.C:
		}
	}
}
