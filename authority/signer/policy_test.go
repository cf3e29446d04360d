package signer

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestParsePolicy(t *testing.T) {
	good := []struct {
		spec string
		want Policy
	}{
		{"zone=Example.TEST", Policy{Zone: "example.test.", Algorithm: 13, Validity: DefaultValidity, Refresh: DefaultRefresh}},
		{"zone=a.test. alg=15 keys=csk denial=nsec3 optout=yes validity=36h refresh=12h serial=keep",
			Policy{Zone: "a.test.", Algorithm: dns.ED25519, CSK: true, NSEC3: true, OptOut: true, Validity: 36 * time.Hour, Refresh: 12 * time.Hour, Serial: SerialKeep}},
		{"zone=b.test zsk-lifetime=30d ksk-lifetime=365d ksk-wait=7d unsign=yes unsign-wait=3d",
			Policy{Zone: "b.test.", Algorithm: 13, Validity: DefaultValidity, Refresh: DefaultRefresh, ZSKLifetime: 30 * 24 * time.Hour,
				KSKLifetime: 365 * 24 * time.Hour, KSKWait: 7 * 24 * time.Hour, Unsign: true, UnsignWait: 3 * 24 * time.Hour}},
		{"zone=. alg=8 keys=ksk+zsk denial=nsec validity=30d refresh=10d serial=increment",
			Policy{Zone: ".", Algorithm: dns.RSASHA256, Validity: 30 * 24 * time.Hour, Refresh: 10 * 24 * time.Hour}},
	}
	for _, c := range good {
		p, err := ParsePolicy(c.spec)
		if err != nil {
			t.Errorf("%q: %v", c.spec, err)
			continue
		}
		if *p != c.want {
			t.Errorf("%q: got %+v, want %+v", c.spec, *p, c.want)
		}
		// The status shows the policy in the flag's own syntax.
		again, err := ParsePolicy(strings.ReplaceAll(p.String(), "0m0s", ""))
		if err != nil || *again != *p {
			t.Errorf("%q: String %q does not parse back: %v", c.spec, p.String(), err)
		}
	}
	bad := []struct{ spec, why string }{
		{"", "no zone"},
		{"alg=13", "no zone"},
		{"zone=a.test alg=10", "want 8, 13"},
		{"zone=a.test alg=5", "want 8, 13"},
		{"zone=a.test keys=two", "csk or ksk+zsk"},
		{"zone=a.test denial=nsec5", "nsec or nsec3"},
		{"zone=a.test optout=yes", "needs denial=nsec3"},
		{"zone=a.test validity=10m", "under the minimum"},
		{"zone=a.test validity=5d refresh=5d", "under the validity"},
		{"zone=a.test refresh=0s", "positive"},
		{"zone=a.test validity=forever", "duration"},
		{"zone=a.test zone=b.test", "twice"},
		{"zone=a.test colour=blue", "unknown setting"},
		{"zone=a.test serial", "KEY=VALUE"},
		{"zone=a..test", "not a domain name"},
		{"zone=a.test serial=date", "increment or keep"},
		{"zone=a.test keys=csk zsk-lifetime=30d", "zsk-lifetime with keys=csk"},
		{"zone=a.test zsk-lifetime=2h", "under the minimum"},
		{"zone=a.test keys=csk ksk-lifetime=365d", "ksk-lifetime with keys=csk"},
		{"zone=a.test ksk-wait=2d", "ksk-wait needs ksk-lifetime"},
		{"zone=a.test unsign-wait=2d", "unsign-wait needs unsign=yes"},
		{"zone=a.test unsign=maybe", "yes or no"},
	}
	for _, c := range bad {
		if _, err := ParsePolicy(c.spec); err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%q: error %v, want one saying %q", c.spec, err, c.why)
		}
	}
}
