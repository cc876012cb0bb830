//go:build !linux

package diffcheck

// threadCPU is not measured outside Linux.
func threadCPU() int64 { return 0 }
