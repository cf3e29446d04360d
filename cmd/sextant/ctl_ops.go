package main

// The operations commands of `sextant ctl` (ctl.go has the protocol):
// reload's answer, runtime negative trust anchors, flushing a zone, the
// cache dump and the per-query log.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/transport"
	"github.com/sextant-dns/sextant/validator"
)

// ctlCommands is the usage line of the commands.
const ctlCommands = "stats | flush NAME | flush --zone ZONE | flush --all | reload | zone status [ZONE] | trace NAME TYPE | " +
	"nta add|remove NAME | nta list | dump-cache FILE | querylog on|off|sample N"

// controlOps is what the operations commands reach in the running serve.
type controlOps struct {
	listeners *listenerSet
	reload    *reloader
	qlog      *queryLog
	ntas      *validator.NegativeTrustAnchors // nil without validation
}

// summedConnStats is the connection statistics of the stream front ends fes
// by kind: one front end runs per listen address, and a kind's are summed.
func summedConnStats(fes []frontEnd) []namedConnStats {
	var out []namedConnStats
	index := make(map[string]int)
	for _, fe := range fes {
		for _, n := range frontEndConnStats(fe) {
			i, ok := index[n.name]
			if !ok {
				i = len(out)
				index[n.name] = i
				out = append(out, namedConnStats{name: n.name})
			}
			out[i].stats = addConnStats(out[i].stats, n.stats)
		}
	}
	return out
}

// addConnStats sums two front ends' connection statistics.
func addConnStats(a, b transport.ConnStats) transport.ConnStats {
	return transport.ConnStats{
		Open: a.Open + b.Open, RefusedTotal: a.RefusedTotal + b.RefusedTotal,
		RefusedClient: a.RefusedClient + b.RefusedClient, RefusedPrefix: a.RefusedPrefix + b.RefusedPrefix,
		Evicted: a.Evicted + b.Evicted, IdleClosed: a.IdleClosed + b.IdleClosed,
	}
}

// ctlName reads a domain name argument in canonical form.
func ctlName(arg string) (string, error) {
	name := dns.Fqdn(arg)
	if _, ok := dns.IsDomainName(name); !ok {
		return "", fmt.Errorf("%q is not a domain name", arg)
	}
	return dns.CanonicalName(name), nil
}

// flushZone is `flush --zone ZONE`: every entry at or below ZONE, of any
// type, and the ready-answer cache.
func (s *controlServer) flushZone(arg string) (string, error) {
	zone, err := ctlName(arg)
	if err != nil {
		return "", err
	}
	n := flushZone(s.res, s.answers, zone)
	return fmt.Sprintf("flushed %d entries at or below %s and the ready-answer cache\n", n, zone), nil
}

// nta is `nta add NAME`, `nta remove NAME` and `nta list`: negative trust
// anchors (RFC 7646) for this run only, besides the configured ones
// (negative-trust-anchor). Adding or removing one flushes the zone, whose
// cached data was validated under the old set.
func (s *controlServer) nta(args []string) (string, error) {
	const usage = "usage: nta add NAME | nta remove NAME | nta list"
	if len(args) == 0 {
		return "", errors.New(usage)
	}
	set := s.ops.ntas
	if set == nil {
		return "", errNoValidation
	}
	switch {
	case args[0] == "list" && len(args) == 1:
		var b strings.Builder
		for _, n := range set.List() {
			fmt.Fprintln(&b, n)
		}
		if b.Len() == 0 {
			return "no negative trust anchors\n", nil
		}
		return b.String(), nil
	case (args[0] == "add" || args[0] == "remove") && len(args) == 2:
		name, err := ctlName(args[1])
		if err != nil {
			return "", err
		}
		var changed bool
		if args[0] == "add" {
			changed, err = set.Add(name)
		} else {
			changed, err = set.Remove(name)
		}
		if err != nil {
			return "", err
		}
		if !changed {
			verb := map[string]string{"add": "already", "remove": "not"}[args[0]]
			return fmt.Sprintf("%s is %s a negative trust anchor\n", name, verb), nil
		}
		n := flushZone(s.res, s.answers, name)
		s.log.Warn("negative trust anchor changed by sextant ctl", "op", args[0], "name", name)
		if args[0] == "add" {
			return fmt.Sprintf("validation is off at and below %s until removed or restart (flushed %d entries)\n", name, n), nil
		}
		return fmt.Sprintf("validation is on again at and below %s (flushed %d entries)\n", name, n), nil
	}
	return "", errors.New(usage)
}

// queryLog is `querylog on|off|sample N`; sample N turns it on, logging
// one query in N.
func (s *controlServer) queryLog(args []string) (string, error) {
	q := s.ops.qlog
	switch {
	case len(args) == 1 && args[0] == "on":
		q.set(true, 1)
	case len(args) == 1 && args[0] == "off":
		q.set(false, 1)
	case len(args) == 2 && args[0] == "sample":
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return "", fmt.Errorf("sample: %q is not a number of at least 1", args[1])
		}
		q.set(true, n)
	case len(args) == 0:
	default:
		return "", errors.New("usage: querylog on | querylog off | querylog sample N")
	}
	return q.status() + "\n", nil
}

// Bounds of a cache dump: the file is for a person or a script to read,
// and a full cache of millions of names must neither fill the disk nor
// keep the control connection for minutes.
const (
	maxDumpEntries = 1_000_000
	maxDumpBytes   = 256 << 20
	dumpFileMode   = 0o600 // a cache's contents say what clients asked
)

// dumpCache is `dump-cache FILE`: the live entries of the RRset cache in
// zone-file text ("name ttl class type rdata ; security", TTLs as they
// stand now; negative and failure entries as comments), at most
// maxDumpEntries entries and maxDumpBytes bytes. The file appears whole or
// not at all (written beside it, then renamed).
func (s *controlServer) dumpCache(args []string) (string, error) {
	if len(args) != 1 {
		return "", errors.New("usage: dump-cache FILE (an absolute path; ctl makes it one)")
	}
	path := args[0]
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%s: the path must be absolute", path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("dump-cache: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, nothing is left to remove
	st, werr := writeCacheDump(tmp, s.res.Cache(), maxDumpEntries, maxDumpBytes)
	err = errors.Join(werr, tmp.Chmod(dumpFileMode), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("dump-cache %s: %w", path, err)
	}
	msg := fmt.Sprintf("wrote %d entries (%d bytes) to %s\n", st.entries, st.bytes, path)
	if st.truncated {
		msg += fmt.Sprintf("truncated at %d entries or %d bytes\n", maxDumpEntries, maxDumpBytes)
	}
	return msg, nil
}

// dumpStats is what writeCacheDump wrote.
type dumpStats struct {
	entries   int
	bytes     int64
	truncated bool
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeCacheDump writes the live entries of c to w, stopping before
// maxEntries entries or once maxBytes bytes are written. The cache's Walk
// holds no lock while this writes.
func writeCacheDump(w io.Writer, c *cache.Cache, maxEntries int, maxBytes int64) (dumpStats, error) {
	cw := &countingWriter{w: w}
	bw := bufio.NewWriter(cw)
	var st dumpStats
	var werr error
	fmt.Fprintf(bw, "; sextant cache dump at DNS time %s\n", c.Now().UTC().Format("2006-01-02 15:04:05 UTC"))
	c.Walk(func(it cache.Item) bool {
		ttl := c.Remaining(it.Entry)
		if ttl == 0 {
			return true // expired, not yet removed
		}
		if st.entries >= maxEntries || cw.n+int64(bw.Buffered()) >= maxBytes {
			st.truncated = true
			return false
		}
		st.entries++
		if werr = writeDumpItem(bw, it, ttl); werr != nil {
			return false
		}
		return true
	})
	if st.truncated {
		fmt.Fprintf(bw, "; truncated: more entries than %d or %d bytes\n", maxEntries, maxBytes)
	}
	if err := bw.Flush(); werr == nil {
		werr = err
	}
	st.bytes = cw.n
	return st, werr
}

// writeDumpItem writes one entry: its records with the TTL left, or a
// comment line for a negative or failure entry.
func writeDumpItem(w *bufio.Writer, it cache.Item, ttl uint32) error {
	e := it.Entry
	class := dns.Class(it.Class).String()
	sec := e.Security.String()
	var err error
	switch {
	case it.Kind == cache.KindNXDomain:
		_, err = fmt.Fprintf(w, ";; NXDOMAIN %s %d %s ; %s\n", it.Name, ttl, class, sec)
	case it.Kind == cache.KindZoneFailure:
		_, err = fmt.Fprintf(w, ";; ZONE-FAILURE %s %d %s ; %s\n", it.Name, ttl, class, edeString(e.EDE, e.EDEText))
	case e.Failure():
		_, err = fmt.Fprintf(w, ";; SERVFAIL %s %d %s %s ; %s\n", it.Name, ttl, class, dns.Type(it.Type), edeString(e.EDE, e.EDEText))
	case len(e.RRs) == 0:
		_, err = fmt.Fprintf(w, ";; NODATA %s %d %s %s ; %s\n", it.Name, ttl, class, dns.Type(it.Type), sec)
	default:
		for _, rrs := range [][]dns.RR{e.RRs, e.Sigs} {
			for _, rr := range cache.WithTTL(rrs, ttl) {
				if _, err = fmt.Fprintf(w, "%s ; %s\n", rr, sec); err != nil {
					return err
				}
			}
		}
	}
	return err
}

// absolutePaths makes the FILE of `dump-cache FILE` absolute on the ctl
// side: serve runs elsewhere (the systemd unit's working directory is /).
func absolutePaths(words []string) ([]string, error) {
	if len(words) == 2 && words[0] == "dump-cache" {
		abs, err := filepath.Abs(words[1])
		if err != nil {
			return nil, err
		}
		return []string{words[0], abs}, nil
	}
	return words, nil
}
