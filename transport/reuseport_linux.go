package transport

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported tells whether several UDP sockets can share a port so
// that the kernel spreads queries over them (one read loop per core).
const reusePortSupported = true

// reusePort sets SO_REUSEPORT on a socket before it is bound.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return fmt.Errorf("SO_REUSEPORT: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("SO_REUSEPORT: %w", serr)
	}
	return nil
}
