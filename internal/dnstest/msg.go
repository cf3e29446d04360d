package dnstest

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// MustRR parses one record in zone-file syntax, failing the test on an
// error.
func MustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("parse record %q: %v", s, err)
	}
	if rr == nil {
		t.Fatalf("parse record %q: no record", s)
	}
	return rr
}

// MustRRs parses records, one a line.
func MustRRs(t testing.TB, lines ...string) []dns.RR {
	t.Helper()
	out := make([]dns.RR, 0, len(lines))
	for _, l := range lines {
		out = append(out, MustRR(t, l))
	}
	return out
}

// MustZoneText parses zone-file text (with $ORIGIN, $TTL, comments and
// relative names; origin is the starting $ORIGIN).
func MustZoneText(t testing.TB, origin, text string) []dns.RR {
	t.Helper()
	var out []dns.RR
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out = append(out, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("parse zone text: %v", err)
	}
	return out
}

// QueryOption shapes a query Query builds.
type QueryOption func(*dns.Msg)

// NoRD clears Recursion Desired, as a resolver's query to an
// authoritative server has it.
func NoRD(m *dns.Msg) { m.RecursionDesired = false }

// EDNS adds an OPT record with the given buffer size and DO bit.
func EDNS(size uint16, do bool) QueryOption {
	return func(m *dns.Msg) { m.SetEdns0(size, do) }
}

// Query is a query for name and qtype (class IN), name as given, with a
// random ID. With no options it is a stub's query: RD set, no OPT record.
func Query(name string, qtype uint16, opts ...QueryOption) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	for _, o := range opts {
		o(m)
	}
	return m
}

// EDE returns m's Extended DNS Error option (RFC 8914), or nil.
func EDE(m *dns.Msg) *dns.EDNS0_EDE {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e
			}
		}
	}
	return nil
}

// EDECode returns m's Extended DNS Error code, or -1 when it has none.
func EDECode(m *dns.Msg) int {
	if e := EDE(m); e != nil {
		return int(e.InfoCode)
	}
	return -1
}
