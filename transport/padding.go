package transport

import "github.com/miekg/dns"

// padded returns m as is for now; EDNS(0) padding comes with DoT.
func padded(m *dns.Msg, _ *dns.Msg) *dns.Msg { return m }
