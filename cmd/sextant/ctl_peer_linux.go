package main

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// peerAllowed admits only a client running as serve's own user or as
// root (SO_PEERCRED): the socket's mode already says so, and this holds
// even if the mode is loosened, or in the moment between bind and chmod.
func peerAllowed(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("peer credentials: %w", err)
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return fmt.Errorf("peer credentials: %w", credErr)
	}
	if uid := os.Getuid(); cred.Uid != uint32(uid) && cred.Uid != 0 {
		return fmt.Errorf("uid %d may not use the control socket of uid %d", cred.Uid, uid)
	}
	return nil
}
