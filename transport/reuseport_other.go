//go:build !linux

package transport

import "syscall"

// reusePortSupported is false here: one UDP socket per address.
const reusePortSupported = false

func reusePort(_, _ string, _ syscall.RawConn) error { return nil }
