package cache

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"

	"github.com/sextant-dns/sextant/security"
)

func TestGetStale(t *testing.T) {
	tests := []struct {
		name       string
		serveStale time.Duration
		entry      func() *Entry
		after      time.Duration // past expiry
		want       bool
	}{
		{"data just expired", time.Hour, func() *Entry { return &Entry{RRs: []dns.RR{dnstest.MustRR(t, "a.example. 60 A 192.0.2.1")}} }, time.Second, true},
		{"data past the stale limit", time.Hour, func() *Entry { return &Entry{RRs: []dns.RR{dnstest.MustRR(t, "a.example. 60 A 192.0.2.1")}} }, time.Hour + time.Second, false},
		{"serve-stale off", 0, func() *Entry { return &Entry{RRs: []dns.RR{dnstest.MustRR(t, "a.example. 60 A 192.0.2.1")}} }, time.Second, false},
		{"bogus data", time.Hour, func() *Entry {
			return &Entry{RRs: []dns.RR{dnstest.MustRR(t, "a.example. 60 A 192.0.2.1")}, Security: security.Bogus}
		}, time.Second, false},
		{"failure", time.Hour, func() *Entry { return &Entry{Rcode: dns.RcodeServerFailure} }, time.Second, false},
		{"secure data", time.Hour, func() *Entry {
			return &Entry{RRs: []dns.RR{dnstest.MustRR(t, "a.example. 60 A 192.0.2.1")}, Security: security.Secure}
		}, time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newTestCache(t, Config{ServeStale: tc.serveStale})
			e := tc.entry()
			if !c.Put("a.example.", dns.TypeA, dns.ClassINET, e, 60) {
				t.Fatal("Put refused")
			}
			clk.Advance(60*time.Second + tc.after)
			if _, ok := c.Get("a.example.", dns.TypeA, dns.ClassINET); ok {
				t.Fatal("Get returned an expired entry")
			}
			got, ok := c.GetStale("a.example.", dns.TypeA, dns.ClassINET)
			if ok != tc.want || (ok && got != e) {
				t.Fatalf("GetStale = %v, %v; want %v", got, ok, tc.want)
			}
		})
	}
}

func TestStaleNXDomainAndFailureOverStale(t *testing.T) {
	c, clk := newTestCache(t, Config{ServeStale: time.Hour})
	nx := &Entry{Rcode: dns.RcodeNameError, Authority: []dns.RR{dnstest.MustRR(t, "example. 60 SOA ns h 1 2 3 4 60")}}
	c.PutNXDomain("gone.example.", dns.ClassINET, nx, 60)
	data := &Entry{RRs: []dns.RR{dnstest.MustRR(t, "a.example. 60 A 192.0.2.1")}}
	c.Put("a.example.", dns.TypeA, dns.ClassINET, data, 60)
	clk.Advance(2 * time.Minute)
	if e, ok := c.GetStaleNXDomain("gone.example.", dns.ClassINET); !ok || e != nx {
		t.Fatal("stale NXDOMAIN not kept")
	}
	// A failure to refresh it leaves the stale data to answer with.
	if c.Put("a.example.", dns.TypeA, dns.ClassINET, &Entry{Rcode: dns.RcodeServerFailure}, 0) {
		t.Fatal("a failure replaced data kept for serve-stale")
	}
	if e, ok := c.GetStale("a.example.", dns.TypeA, dns.ClassINET); !ok || e != data {
		t.Fatal("stale data lost to a failure")
	}
	// Fresh data replaces it.
	fresh := &Entry{RRs: []dns.RR{dnstest.MustRR(t, "a.example. 60 A 192.0.2.2")}}
	if !c.Put("a.example.", dns.TypeA, dns.ClassINET, fresh, 60) {
		t.Fatal("fresh data refused")
	}
	if e, ok := c.Get("a.example.", dns.TypeA, dns.ClassINET); !ok || e != fresh {
		t.Fatal("fresh data not served")
	}
}

// TestNearExpiryReplacement: in the last tenth of its life a Secure entry
// is replaced by a refresh like an expired one; before that it is not.
func TestNearExpiryReplacement(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	secure := &Entry{RRs: []dns.RR{dnstest.MustRR(t, "a.example. 100 A 192.0.2.1")}, Security: security.Secure}
	c.Put("a.example.", dns.TypeA, dns.ClassINET, secure, 100)
	refresh := func() *Entry { return &Entry{RRs: []dns.RR{dnstest.MustRR(t, "a.example. 100 A 192.0.2.1")}} }
	clk.Advance(89 * time.Second)
	if c.NearExpiry(secure) || c.Put("a.example.", dns.TypeA, dns.ClassINET, refresh(), 100) {
		t.Fatal("a Secure entry with 11 s of 100 left was replaced by unvalidated data")
	}
	clk.Advance(2 * time.Second)
	if !c.NearExpiry(secure) {
		t.Fatal("9 s of 100 left is not near expiry")
	}
	if !c.Put("a.example.", dns.TypeA, dns.ClassINET, refresh(), 100) {
		t.Fatal("a refresh in the last tenth was refused")
	}
}
