//go:build !linux

package transport

import (
	"net"
	"syscall"
)

// reusePortSupported is false here: one UDP socket per address, bound
// exclusively.
const reusePortSupported = false

func reusePort(_, _ string, _ syscall.RawConn) error { return nil }

func shareBound(_ *net.UDPConn) error { return nil }

func steerToFirst(_ *net.UDPConn, _ int) error { return nil }

func joinSendOnly(_ *net.UDPConn) (int, error) { return -1, nil }

func closeSendOnly(_ int) {}
