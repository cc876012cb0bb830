package chaos

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// inNetns runs f on an OS thread switched into the network namespace at
// path. Sockets and TUN files f opens belong to that namespace and stay
// usable from any goroutine. The thread is never switched back: its
// goroutine exits still locked, so the runtime discards the thread.
func inNetns(path string, f func() error) error {
	done := make(chan error, 1)
	go func() { // owned here: lives for f alone
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- fmt.Errorf("netns %s: %w", path, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			done <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		done <- f()
	}()
	return <-done
}

// openTun attaches to the TUN device name (made persistent by `ip tuntap
// add`) in the namespace at nsPath: raw IPv4/IPv6 packets, no packet-info
// header, no offloads. The file is non-blocking, so Read and Write go
// through the runtime's poller and Close interrupts them.
//
// This is the TUNSETIFF ioctl with x/sys/unix rather than a TUN library:
// golang.zx2c4.com/wireguard/tun and github.com/songgao/water create
// their own device (wireguard's also turns on virtio-net headers and
// offloads and brings a batch API) and neither opens it in another
// namespace, which is the part that matters here.
func openTun(nsPath, name string) (*os.File, error) {
	var f *os.File
	err := inNetns(nsPath, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF %s: %w", name, err)
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return err
		}
		f = os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
		return nil
	})
	return f, err
}
