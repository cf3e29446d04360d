//go:build !linux

package main

import "net"

// peerAllowed relies on the socket's mode where SO_PEERCRED is missing.
func peerAllowed(*net.UnixConn) error { return nil }
