package resolver

import "github.com/miekg/dns"

// RFC 9156 2.3: at most MAX_MINIMISE_COUNT minimised queries per name, the
// first MINIMISE_ONE_LAB adding one label each, later ones several, so that
// a name with very many labels cannot cost a query per label.
const (
	maxMinimiseCount = 10
	minimiseOneLab   = 4
)

// qmin tracks QNAME minimisation (RFC 9156) for one name's iteration.
type qmin struct {
	on    bool
	at    string // the last minimised name that proved not to be a cut
	count int
}

func newQmin(on bool) *qmin { return &qmin{on: on} }

// next returns the minimised name to ask the servers of zone about, or
// false when the full name should be asked.
func (m *qmin) next(zone, qname string) (string, bool) {
	if !m.on || m.count >= maxMinimiseCount {
		return "", false
	}
	base := zone
	if m.at != "" && strictSubdomain(m.at, zone) && isSubdomain(qname, m.at) {
		base = m.at
	}
	total, have := dns.CountLabel(qname), dns.CountLabel(base)
	remaining := total - have
	if remaining <= 1 {
		return "", false
	}
	add := 1
	if m.count >= minimiseOneLab {
		add = max(1, remaining/(maxMinimiseCount-m.count))
	}
	if have+add >= total {
		return "", false
	}
	next := ancestorWithLabels(qname, have+add)
	if next[0] == '_' {
		// RFC 9156 2.3: underscore labels (_25._tcp...) are not
		// administrative boundaries: ask the whole name at once.
		return "", false
	}
	m.count++
	return next, true
}

// advance records that asked exists but is not a zone cut.
func (m *qmin) advance(asked string) { m.at = asked }

// disable sends the full name from now on (the fallback for servers that
// answer minimised queries wrongly).
func (m *qmin) disable() { m.on = false }
