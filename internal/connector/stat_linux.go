//go:build linux

package connector

import (
	"fmt"
	"os"
	"syscall"
)

// fileIdentity adds to a file's fingerprint what size and mtime miss: a
// file replaced by another (a new inode) or changed with its mtime
// restored (ctime cannot be set).
func fileIdentity(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%d:%d %d.%09d", st.Dev, st.Ino, st.Ctim.Sec, st.Ctim.Nsec)
}
