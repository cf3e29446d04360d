package resolver

import (
	"crypto/rand"
	"encoding/binary"
)

// Spoofing defence (RFC 5452): every upstream query draws its ID, its source
// port and its 0x20 case pattern from crypto/rand, so an off-path attacker
// must guess about 16+16+n bits at once.

// randUint16 returns a uniformly random 16-bit value from crypto/rand.
func randUint16() uint16 {
	var b [2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return binary.BigEndian.Uint16(b[:])
}

// randUint32 returns a uniformly random 32-bit value from crypto/rand.
func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// randIntn returns a uniform value in [0, n) for n > 0 (n small enough that
// the modulo bias is negligible for selection purposes).
func randIntn(n int) int {
	if n <= 1 {
		return 0
	}
	return int(randUint32() % uint32(n))
}

// Source ports are drawn from the IANA dynamic range upward of 1024 so that
// the whole unprivileged space (about 64k values) is used.
const (
	minSourcePort = 1024
	maxSourcePort = 65535
)

// randSourcePort returns a random unprivileged UDP source port.
func randSourcePort() int {
	return minSourcePort + int(randUint32()%uint32(maxSourcePort-minSourcePort+1))
}

// randomCase returns name with the case of each ASCII letter chosen at random
// (DNS 0x20, draft-vixie-dnsext-dns0x20): a reply must echo it exactly.
func randomCase(name string) string {
	b := []byte(name)
	var bits [32]byte
	_, _ = rand.Read(bits[:])
	for i, c := range b {
		lower := c | 0x20
		if lower < 'a' || lower > 'z' {
			continue
		}
		if bits[(i/8)%len(bits)]>>(i%8)&1 == 1 {
			b[i] = lower &^ 0x20
		} else {
			b[i] = lower
		}
	}
	return string(b)
}
