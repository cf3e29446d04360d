package siphash

import (
	"encoding/binary"
	"encoding/hex"
	"testing"
)

// TestSipHash24 checks the reference vector of the SipHash paper
// (Appendix A: key 00..0f, message 00..0e).
func TestSipHash24(t *testing.T) {
	var key [16]byte
	for i := range key {
		key[i] = byte(i)
	}
	msg := make([]byte, 15)
	for i := range msg {
		msg[i] = byte(i)
	}
	if got, want := Sum64(&key, msg), uint64(0xa129ca6149be45e5); got != want {
		t.Errorf("sipHash24 = %#x, want %#x", got, want)
	}
}

// TestClientCookieVector: RFC 9018 Appendix A's resolver at 198.51.100.100
// with client secret 3f6651c981c1d73e587925d2f9985f08 sends Client Cookie
// 2464c4abcf10c957 to 192.0.2.53: SipHash-2-4 of the server's address.
func TestClientCookieVector(t *testing.T) {
	var key [16]byte
	k, _ := hex.DecodeString("3f6651c981c1d73e587925d2f9985f08")
	copy(key[:], k)
	var out [8]byte
	binary.LittleEndian.PutUint64(out[:], Sum64(&key, []byte{192, 0, 2, 53}))
	if got := hex.EncodeToString(out[:]); got != "2464c4abcf10c957" {
		t.Errorf("client cookie %s, want 2464c4abcf10c957", got)
	}
}
