package resolver

import (
	"strings"
	"testing"
)

// TestZeroConfig: the zero Config works like the net/http and dns.Client
// zero values: built-in hints, both address families, default limits and
// DNSSEC off. No query is sent (the built-in roots are off loopback).
func TestZeroConfig(t *testing.T) {
	r, err := New(Config{})
	if err != nil {
		t.Fatalf("New(Config{}): %v", err)
	}
	if !r.policy.ipv4 || !r.policy.ipv6 {
		t.Errorf("families: ipv4 %v ipv6 %v, want both", r.policy.ipv4, r.policy.ipv6)
	}
	if r.dnssec != nil {
		t.Error("DNSSEC on without Config.DNSSEC")
	}
	if r.Limits() != DefaultLimits() {
		t.Errorf("limits %+v, want the defaults %+v", r.Limits(), DefaultLimits())
	}
	if len(r.roots.ns) == 0 || r.policy.allowLoopback {
		t.Errorf("roots %d, loopback %v: want the built-in hints", len(r.roots.ns), r.policy.allowLoopback)
	}
}

// TestConfigFamilies: each family can be turned off, but not both.
func TestConfigFamilies(t *testing.T) {
	for _, tc := range []struct {
		no4, no6     bool
		want4, want6 bool
		err          string
	}{
		{false, false, true, true, ""},
		{true, false, false, true, ""},
		{false, true, true, false, ""},
		{true, true, false, false, "neither IPv4 nor IPv6"},
	} {
		r, err := New(Config{DisableUpstreamIPv4: tc.no4, DisableUpstreamIPv6: tc.no6})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("disable v4 %v v6 %v: err %v, want %q", tc.no4, tc.no6, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("disable v4 %v v6 %v: %v", tc.no4, tc.no6, err)
		}
		if r.policy.ipv4 != tc.want4 || r.policy.ipv6 != tc.want6 {
			t.Errorf("disable v4 %v v6 %v: ipv4 %v ipv6 %v", tc.no4, tc.no6, r.policy.ipv4, r.policy.ipv6)
		}
	}
}
