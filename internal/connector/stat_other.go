//go:build !linux

package connector

import "os"

// fileIdentity is empty where only size and mtime identify a file.
func fileIdentity(os.FileInfo) string { return "" }
