package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// SeedForNewCluster turns the catalog file at path, a copy taken from a
// running cluster (a backup), into the first state of a new cluster, and
// returns the raft index it had applied. Datasets, grants, the policy,
// audit anchors and privacy spending stay as they were. The member
// registry and unused join tokens are emptied: they name the old cluster's
// nodes, and the new cluster's leader makes its raft configuration follow
// the registry, so keeping them would add nodes that are gone and leave
// out the one that runs. The new node registers itself when it leads; the
// other cities join it with new tokens.
func SeedForNewCluster(path string) (uint64, error) {
	if err := checkBoltHeader(path); err != nil {
		return 0, fmt.Errorf("store: catalog in the backup: %w", err)
	}
	db, err := bolt.Open(path, 0o600, Options{}.boltOptions(0))
	if err != nil {
		return 0, fmt.Errorf("store: catalog in the backup: %w", err)
	}
	var index uint64
	err = db.Update(func(tx *bolt.Tx) error {
		if err := checkSchema(tx); err != nil {
			return err
		}
		if index, err = readApplied(tx); err != nil {
			return err
		}
		if index == 0 {
			return errors.New("it has applied no raft entry")
		}
		for _, name := range [][]byte{bucketMembers, bucketJoinTokens} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		return createBuckets(tx, catalogBuckets)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("store: catalog in the backup: %w", err)
	}
	return index, nil
}
