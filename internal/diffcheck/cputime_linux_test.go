package diffcheck

import "syscall"

// threadCPU returns the CPU time the calling OS thread has used, so a
// benchmark on a busy machine can report work rather than waiting.
func threadCPU() int64 {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if syscall.Getrusage(rusageThread, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
