package sharedcache

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/security"
)

// An entry is magic, stored and expires (Unix nanoseconds, DNS clock), the
// security state, the packed response (rcode, answer and authority
// sections), then an HMAC-SHA256 over the Redis key and all of that.
const (
	magic      = "SXC1"
	headerLen  = len(magic) + 8 + 8 + 1
	macLen     = sha256.Size
	maxWireLen = 65535
	// MinKeyLen is the shortest fleet key accepted: 256 bits, the HMAC's
	// own strength.
	MinKeyLen = 32
)

// keyPrefix names Sextant's entries in a Redis shared with others.
const keyPrefix = "sextant:v1:"

// redisKey is the Redis key of q: its lower-cased name, type and class.
func redisKey(q dns.Question) string {
	return keyPrefix + dnsname.Canonical(q.Name) + "/" + strconv.Itoa(int(q.Qtype)) + "/" + strconv.Itoa(int(q.Qclass))
}

// encode packs a as the entry stored under rkey, signed with key.
func encode(key []byte, rkey string, a *resolver.SharedAnswer) ([]byte, error) {
	m := &dns.Msg{Answer: a.Answer, Ns: a.Authority, Compress: true}
	m.Rcode = a.Rcode
	m.Response = true
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("sharedcache: pack: %w", err)
	}
	if len(wire) > maxWireLen {
		return nil, errors.New("sharedcache: answer too long")
	}
	buf := make([]byte, 0, headerLen+len(wire)+macLen)
	buf = append(buf, magic...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(a.Stored.UnixNano()))
	buf = binary.BigEndian.AppendUint64(buf, uint64(a.Expires.UnixNano()))
	buf = append(buf, byte(a.Security))
	buf = append(buf, wire...)
	return append(buf, mac(key, rkey, buf)...), nil
}

// errForged is an entry whose MAC is not the fleet's.
var errForged = errors.New("sharedcache: entry not signed with the fleet key")

// decode checks and unpacks an entry read from rkey.
func decode(key []byte, rkey string, buf []byte) (*resolver.SharedAnswer, error) {
	if len(buf) < headerLen+macLen || string(buf[:len(magic)]) != magic {
		return nil, errors.New("sharedcache: not an entry")
	}
	body, sum := buf[:len(buf)-macLen], buf[len(buf)-macLen:]
	if !hmac.Equal(sum, mac(key, rkey, body)) {
		return nil, errForged
	}
	off := len(magic)
	stored := int64(binary.BigEndian.Uint64(body[off:]))
	expires := int64(binary.BigEndian.Uint64(body[off+8:]))
	st := security.Status(body[off+16])
	if st > security.Bogus {
		return nil, fmt.Errorf("sharedcache: security state %d", st)
	}
	var m dns.Msg
	if err := m.Unpack(body[headerLen:]); err != nil {
		return nil, fmt.Errorf("sharedcache: unpack: %w", err)
	}
	return &resolver.SharedAnswer{Rcode: m.Rcode, Answer: m.Answer, Authority: m.Ns, Security: st,
		Stored: time.Unix(0, stored), Expires: time.Unix(0, expires)}, nil
}

// mac is the HMAC-SHA256 under key of the Redis key and the entry body:
// an entry cannot be moved to another question's key.
func mac(key []byte, rkey string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	var n [2]byte
	binary.BigEndian.PutUint16(n[:], uint16(len(rkey)))
	h.Write(n[:])
	h.Write([]byte(rkey))
	h.Write(body)
	return h.Sum(nil)
}
