package resolver

import (
	"errors"
	"net/netip"

	"github.com/sextant-dns/sextant/roothints"
)

// rootsFrom turns the root hints into canonical NS names and addresses.
func rootsFrom(h *roothints.Hints) (rootServers, error) {
	rs := rootServers{addrs: make(map[string][]netip.Addr)}
	for _, ns := range h.NS {
		name := canonical(ns.Ns)
		rs.ns = append(rs.ns, name)
		for _, a := range h.Addrs[ns.Ns] {
			rs.addrs[name] = append(rs.addrs[name], a.Unmap())
		}
		if name != ns.Ns {
			for _, a := range h.Addrs[name] {
				rs.addrs[name] = append(rs.addrs[name], a.Unmap())
			}
		}
	}
	if len(rs.ns) == 0 || len(rs.addrs) == 0 {
		return rs, errors.New("no root name servers with addresses")
	}
	return rs, nil
}
