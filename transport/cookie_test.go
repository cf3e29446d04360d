package transport

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"
	"time"

	"github.com/sextant-dns/sextant/clock"
)

func mustHexT(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cookiesAt(t *testing.T, secret string, unix int64) (*ServerCookies, *clock.Manual) {
	t.Helper()
	s, err := ParseCookieSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewManual(time.Unix(unix, 0))
	return NewServerCookies(s, clk), clk
}

// TestServerCookieVectors checks RFC 9018 Appendix A: the cookies Sextant
// issues are the ones every other implementation of the RFC issues.
func TestServerCookieVectors(t *testing.T) {
	cases := []struct {
		name, secret, ip, query string
		at                      int64
		state                   cookieState
		reply                   string
	}{
		{"A.1 learning a new server cookie", "e5e973e5a6b2a43f48e7dc849e37bfcf", "198.51.100.100",
			"2464c4abcf10c957", 1559731985, cookieClientOnly,
			"2464c4abcf10c957010000005cf79f111f8130c3eee29480"},
		{"A.2 renewed 40 minutes later", "e5e973e5a6b2a43f48e7dc849e37bfcf", "198.51.100.100",
			"2464c4abcf10c957010000005cf79f111f8130c3eee29480", 1559734385, cookieValid,
			"2464c4abcf10c957010000005cf7a871d4a564a1442aca77"},
		// Its cookie is stamped 1h52m before: too old, so renewed.
		{"A.3 another client, an old cookie", "e5e973e5a6b2a43f48e7dc849e37bfcf", "203.0.113.203",
			"fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5", 1559734700, cookieInvalid,
			"fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e"},
		{"same cookie from another address", "e5e973e5a6b2a43f48e7dc849e37bfcf", "203.0.113.204",
			"fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5", 1559734700, cookieInvalid, ""},
		{"A.4 IPv6 client, cookie of another secret", "445536bcd2513298075a5d379663c962", "2001:db8:220:1:59de:d0f4:8769:82b8",
			"22681ab97d52c298010000005cf7c57926556bd0934c72f8", 1559741961, cookieInvalid,
			"22681ab97d52c298010000005cf7c609a6bb79d16625507a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc, _ := cookiesAt(t, c.secret, c.at)
			got := sc.checkRaw(mustHexT(t, c.query), netip.MustParseAddr(c.ip))
			if got.state != c.state {
				t.Errorf("state = %d, want %d", got.state, c.state)
			}
			if c.reply != "" && got.reply != c.reply {
				t.Errorf("reply = %s, want %s", got.reply, c.reply)
			}
		})
	}
}

// TestCookieHashReserved: RFC 9018 A.3's cookie, with Reserved octets
// another server set, hashes as sent.
func TestCookieHashReserved(t *testing.T) {
	secret, _ := ParseCookieSecret("e5e973e5a6b2a43f48e7dc849e37bfcf")
	cookie := mustHexT(t, "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5")
	if got, want := cookieHash(&secret, cookie, netip.MustParseAddr("203.0.113.203")), binary.LittleEndian.Uint64(cookie[16:]); got != want {
		t.Errorf("hash %x, want %x", got, want)
	}
}

// TestServerCookieRotation: after Rotate the previous secret's cookies are
// still valid, after a second Rotate they are not.
func TestServerCookieRotation(t *testing.T) {
	sc, _ := cookiesAt(t, "e5e973e5a6b2a43f48e7dc849e37bfcf", 1559731985)
	ip := netip.MustParseAddr("198.51.100.100")
	first := sc.checkRaw(mustHexT(t, "2464c4abcf10c957"), ip)
	cookie := mustHexT(t, first.reply)
	sc.Rotate(RandomCookieSecret())
	if got := sc.checkRaw(cookie, ip); got.state != cookieValid {
		t.Fatalf("after one rotation: state %d, want valid", got.state)
	}
	sc.Rotate(RandomCookieSecret())
	if got := sc.checkRaw(cookie, ip); got.state != cookieInvalid {
		t.Fatalf("after two rotations: state %d, want invalid", got.state)
	}
}

// TestServerCookieAge covers RFC 9018 4.3's window: reused under half an
// hour, renewed after, refused after an hour or five minutes ahead, and
// the 2^32 wrap.
func TestServerCookieAge(t *testing.T) {
	const now = 1559731985
	ip := netip.MustParseAddr("192.0.2.1")
	cases := []struct {
		name    string
		stamped int64
		state   cookieState
		reused  bool
	}{
		{"this second", now, cookieValid, true},
		{"29 minutes old", now - 29*60, cookieValid, true},
		{"half an hour old", now - 1800, cookieValid, false},
		{"an hour old", now - 3600, cookieValid, false},
		{"an hour and a second old", now - 3601, cookieInvalid, false},
		{"five minutes ahead", now + 300, cookieValid, true},
		{"five minutes and a second ahead", now + 301, cookieInvalid, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc, clk := cookiesAt(t, "000102030405060708090a0b0c0d0e0f", c.stamped)
			cookie := mustHexT(t, sc.checkRaw(mustHexT(t, "0102030405060708"), ip).reply)
			clk.Set(time.Unix(now, 0))
			got := sc.checkRaw(cookie, ip)
			if got.state != c.state {
				t.Errorf("state = %d, want %d", got.state, c.state)
			}
			if reused := got.reply == hex.EncodeToString(cookie); reused != c.reused {
				t.Errorf("reused = %v, want %v", reused, c.reused)
			}
			if c.state == cookieValid || c.state == cookieInvalid {
				ts := binary.BigEndian.Uint32(mustHexT(t, got.reply)[12:16])
				if !c.reused && ts != now {
					t.Errorf("fresh cookie stamped %d, want %d", ts, now)
				}
			}
		})
	}
	if !cookieUsable(4294964696, 1000) || !cookieWorn(4294964696, 1000) {
		t.Error("a cookie an hour old across the 2^32 wrap must be usable and worn")
	}
}

// TestServerCookieForgery: flipping any octet of a valid cookie (hash,
// timestamp, version, client cookie) makes it invalid.
func TestServerCookieForgery(t *testing.T) {
	sc, _ := cookiesAt(t, "e5e973e5a6b2a43f48e7dc849e37bfcf", 1559731985)
	ip := netip.MustParseAddr("198.51.100.100")
	good := mustHexT(t, sc.checkRaw(mustHexT(t, "2464c4abcf10c957"), ip).reply)
	for i := range good {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x01
		if got := sc.checkRaw(bad, ip); got.state == cookieValid {
			t.Errorf("octet %d flipped: still valid", i)
		}
	}
}
