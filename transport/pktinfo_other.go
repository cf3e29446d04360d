//go:build !linux

package transport

import (
	"net/netip"
	"syscall"
)

// Elsewhere wildcard UDP sockets answer from the address the kernel picks.
const pktinfoSupported = false

var pktinfoOOBLen = 0

func setPktinfo(string, syscall.RawConn) error { return nil }

func parsePktinfo([]byte) (netip.Addr, uint32, bool) { return netip.Addr{}, 0, false }

func appendPktinfo(b []byte, _ netip.Addr, _ uint32) []byte { return b[:0] }
