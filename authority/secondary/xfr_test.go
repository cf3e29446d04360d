package secondary

import (
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

func soaAt(t *testing.T, serial int) dns.RR {
	return dnstest.MustRR(t, "x.test. 300 IN SOA ns.x.test. h.x.test. "+strconv.Itoa(serial)+" 3600 600 86400 300")
}

func texts(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, r := range rrs {
		out[i] = r.String()
	}
	sort.Strings(out)
	return out
}

// TestXFRParser: the record streams of AXFR and IXFR answers (RFC 1995 4,
// RFC 5936 2.2), good and bad, as the parser sees them.
func TestXFRParser(t *testing.T) {
	a1 := dnstest.MustRR(t, "a.x.test. 300 IN A 192.0.2.1")
	a2 := dnstest.MustRR(t, "a.x.test. 300 IN A 192.0.2.2")
	b := dnstest.MustRR(t, "b.x.test. 300 IN A 192.0.2.3")
	ns := dnstest.MustRR(t, "x.test. 300 IN NS ns.x.test.")
	have := []dns.RR{soaAt(t, 1), ns, a1}

	cases := []struct {
		name                  string
		op                    string
		stream                []dns.RR
		want                  []dns.RR // the resulting zone; nil with upToDate
		upToDate, incremental bool
		err                   string
	}{
		{name: "axfr", op: "AXFR", stream: []dns.RR{soaAt(t, 2), ns, a2, soaAt(t, 2)}, want: []dns.RR{soaAt(t, 2), ns, a2}},
		{name: "ixfr up to date", op: "IXFR", stream: []dns.RR{soaAt(t, 1)}, upToDate: true},
		{name: "ixfr lone newer SOA", op: "IXFR", stream: []dns.RR{soaAt(t, 2)}, err: "is a lone SOA"},
		{name: "ixfr axfr-style", op: "IXFR", stream: []dns.RR{soaAt(t, 2), ns, b, soaAt(t, 2)}, want: []dns.RR{soaAt(t, 2), ns, b}},
		{name: "ixfr one step", op: "IXFR", incremental: true,
			stream: []dns.RR{soaAt(t, 2), soaAt(t, 1), a1, soaAt(t, 2), a2, b, soaAt(t, 2)},
			want:   []dns.RR{soaAt(t, 2), ns, a2, b}},
		{name: "ixfr two steps", op: "IXFR", incremental: true,
			stream: []dns.RR{soaAt(t, 3), soaAt(t, 1), a1, soaAt(t, 2), a2, soaAt(t, 2), soaAt(t, 3), b, soaAt(t, 3)},
			want:   []dns.RR{soaAt(t, 3), ns, a2, b}},
		{name: "ixfr deletes what we lack", op: "IXFR",
			stream: []dns.RR{soaAt(t, 2), soaAt(t, 1), b, soaAt(t, 2), soaAt(t, 2)}, err: "deletes a record this copy does not hold"},
		{name: "ixfr from another serial", op: "IXFR",
			stream: []dns.RR{soaAt(t, 3), soaAt(t, 2), a1, soaAt(t, 3), soaAt(t, 3)}, err: "the differences start at serial 2, ours is 1"},
		{name: "ixfr broken chain", op: "IXFR",
			stream: []dns.RR{soaAt(t, 4), soaAt(t, 1), soaAt(t, 2), soaAt(t, 3), soaAt(t, 4), soaAt(t, 4)}, err: "difference from serial 3 follows one to serial 2"},
		{name: "axfr records after the end", op: "AXFR", stream: []dns.RR{soaAt(t, 2), ns, soaAt(t, 2), b}, err: "records after the closing SOA"},
		{name: "axfr out of zone", op: "AXFR", stream: []dns.RR{soaAt(t, 2), dnstest.MustRR(t, "x.example. 300 IN A 192.0.2.9")}, err: "outside the zone x.test."},
		{name: "axfr foreign SOA", op: "AXFR", stream: []dns.RR{dnstest.MustRR(t, "y.x.test. 300 IN SOA ns. h. 1 1 1 1 1")}, err: "SOA for y.x.test."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &xfrParser{zone: "x.test.", op: tc.op, limits: DefaultLimits, haveSerial: 1}
			err := p.add(tc.stream)
			var res *transferResult
			if err == nil {
				res, err = p.finish(have)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.upToDate != tc.upToDate || res.incremental != tc.incremental {
				t.Fatalf("upToDate %v incremental %v", res.upToDate, res.incremental)
			}
			if got, want := strings.Join(texts(res.rrs), "\n"), strings.Join(texts(tc.want), "\n"); got != want {
				t.Fatalf("zone:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
