package main

// Live reload: SIGHUP and `sextant ctl reload` re-read the --config file
// (with the same command line, which still wins) and apply what changed
// without a restart, keeping the caches and the open client connections.
//
// What applies at once: the client access list (allow), the rate limits
// (and the response rate limits), the server cookie secret of
// --cookie-secret-file (re-read on every reload, rotated when it changed),
// the connection limits, the log level, the per-query log, the negative
// trust anchors, DDR, the shutdown timeout, zone files added to zone, and
// the listeners (listen, dot, doh, doq: only the addresses added are
// opened and only those removed are closed), and the TLS certificate and
// key files (re-read on every reload, and when they change; other files
// named replace them; going back to a self-signed certificate waits for a
// restart). Every other setting (the cache's size, the
// trust anchors, the upstream options, ...) is reported as waiting for a
// restart, in the log and in ctl's answer.
//
// A reload that fails (a mistake in the file, a listener that cannot
// bind, a certificate that does not load) changes nothing: the listeners
// it opened are closed again and the running configuration stays.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/transport"
	"github.com/sextant-dns/sextant/validator"
)

// liveSettings are the serve flags a reload applies by setting the new
// value and telling the part that uses it (apply). zone, tls-cert and
// tls-key are judged on their own (settingApplies).
var liveSettings = map[string]bool{
	"allow": true, "log-level": true, "negative-trust-anchor": true,
	"rate-limit": true, "rate-limit-burst": true, "rate-limit-slip": true, "rate-limit-exempt": true,
	"max-conns": true, "conns-per-client": true, "conns-per-network": true,
	"listen": true, "dot": true, "doh": true, "doq": true,
	"query-log": true, "query-log-sample": true,
	"shutdown-timeout": true, "ddr-name": true, "ddr-ca": true, "no-ddr": true,
	"rrl-responses-per-second": true, "rrl-slip": true,
}

// listenerSettings are the settings whose change opens or closes listeners.
var listenerSettings = []string{"listen", "dot", "doh", "doq"}

// reloader applies a re-read configuration to a running serve. One reload
// runs at a time.
type reloader struct {
	mu        sync.Mutex
	o         *serveOptions // the running configuration, updated by each reload
	log       *slog.Logger
	level     *slog.LevelVar
	listeners *listenerSet
	qlog      *queryLog
	res       *resolver.Resolver
	answers   *cache.Answers
	zones     *authority.Server
	ntas      *validator.NegativeTrustAnchors // nil without validation
	// after is serve's own reload work once the configuration is applied:
	// re-reading the zone files and the certificate files, NOTIFY for the
	// zones transferred out, DDR's view of the listeners.
	after func()
}

// reloadResult is what a reload did.
type reloadResult struct {
	applied []string // settings changed and applied
	restart []string // settings changed that wait for a restart
	err     error    // the reload failed and changed nothing
}

func (r reloadResult) String() string {
	var b strings.Builder
	switch {
	case r.err != nil:
		fmt.Fprintf(&b, "reload failed; the running configuration stays: %v\n", r.err)
		return b.String()
	case len(r.applied) == 0 && len(r.restart) == 0:
		b.WriteString("configuration unchanged\n")
	}
	if len(r.applied) > 0 {
		fmt.Fprintf(&b, "applied: %s\n", strings.Join(r.applied, ", "))
	}
	if len(r.restart) > 0 {
		fmt.Fprintf(&b, "needs restart: %s\n", strings.Join(r.restart, ", "))
	}
	b.WriteString("zone files and certificate files re-read\n")
	return b.String()
}

// reload re-reads the configuration and applies it, then does serve's own
// reload work; why names the trigger for the log.
func (rl *reloader) reload(why string) reloadResult {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	r := rl.reloadConfig()
	if r.err == nil {
		// The operators rotate a shared secret by writing the file on
		// every server and reloading (cookie_rotation.go).
		if _, err := rl.o.abuse.rotation.reloadFile(); err != nil {
			rl.log.Error("server cookie secret not re-read; the running secret stays", "err", err)
		}
	}
	switch {
	case r.err != nil:
		rl.log.Error("configuration reload failed; the running configuration stays", "file", rl.o.configFile, "by", why, "err", r.err)
	case len(r.applied) > 0:
		rl.log.Info("configuration reloaded", "file", rl.o.configFile, "by", why, "applied", strings.Join(r.applied, ","))
	}
	if len(r.restart) > 0 {
		rl.log.Warn("configuration changed; these settings take effect at the next restart",
			"file", rl.o.configFile, "keys", strings.Join(r.restart, ","))
	}
	if rl.after != nil {
		rl.after()
	}
	return r
}

// shutdownTimeout is --shutdown-timeout as the last reload left it (a
// reload from ctl may be changing it).
func (rl *reloader) shutdownTimeout() time.Duration {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return rl.o.shutdownWithin
}

// reloadConfig reads the file again and applies what changed: first what
// may fail (new listeners, a first certificate), undone on failure, then
// the rest, which cannot fail, and last the closing of removed listeners.
func (rl *reloader) reloadConfig() reloadResult {
	o := rl.o
	if o.configFile == "" {
		return reloadResult{}
	}
	next, err := parseServeFlags(o.args, io.Discard)
	if err == nil {
		err = checkServeOptions(next, false)
	}
	if err != nil {
		return reloadResult{err: err}
	}
	var r reloadResult
	var live []string
	for _, name := range changedSettings(o.flags, next.flags) {
		switch {
		case name == "zone":
			// Added files are loaded (addZones); a removed one waits.
			if o.addZones(rl.zones, next.zones, rl.log) {
				// In the file's order, so that the next reload sees no change.
				copyFlagValue(o.flags.Lookup(name), next.flags.Lookup(name))
				r.applied = append(r.applied, name)
			} else {
				r.restart = append(r.restart, name)
			}
		case name == "tls-cert" || name == "tls-key":
			// New files replace the certificate in use (switchCertFiles);
			// back to a self-signed one needs a restart.
			if rl.listeners.certs == nil || (next.tlsCert != "" && next.tlsKey != "") {
				live = append(live, name)
			} else {
				r.restart = append(r.restart, name)
			}
		case liveSettings[name]:
			live = append(live, name)
		default:
			r.restart = append(r.restart, name)
		}
	}
	opened, closing, err := rl.openListeners(next, live)
	if err != nil {
		return reloadResult{err: err}
	}
	if err := rl.switchCertFiles(next, live); err != nil {
		rl.closeListeners(opened)
		return reloadResult{err: err}
	}
	oldNTAs := slices.Clone(o.negAnchors)
	for _, name := range live {
		if !copyFlagValue(o.flags.Lookup(name), next.flags.Lookup(name)) {
			r.restart = append(r.restart, name)
			continue
		}
		r.applied = append(r.applied, name)
	}
	rl.apply(r.applied, oldNTAs)
	rl.closeListeners(closing)
	if len(opened) > 0 {
		rl.log.Info("listeners opened", "listeners", keysString(opened))
	}
	slices.Sort(r.applied)
	slices.Sort(r.restart)
	return r
}

// openListeners starts the listeners next asks for that are not running,
// when a listener setting is among live, and returns them with those to
// close. On an error it closes the ones it opened.
func (rl *reloader) openListeners(next *serveOptions, live []string) (opened, closing []listenerKey, err error) {
	if !slices.ContainsFunc(live, func(s string) bool { return slices.Contains(listenerSettings, s) }) {
		return nil, nil, nil
	}
	ls := rl.listeners
	want := next.listenerKeys()
	have := ls.running()
	for _, k := range have {
		if !slices.Contains(want, k) {
			closing = append(closing, k)
		}
	}
	defer func() {
		if err != nil {
			rl.closeListeners(opened)
			opened, closing = nil, nil
		}
	}()
	for _, k := range want {
		if slices.Contains(have, k) {
			continue
		}
		if k.kind != kindDo53 && ls.certs == nil {
			if err := ls.makeCerts(&next.frontEndOptions); err != nil {
				return opened, closing, err
			}
		}
		if _, err := ls.start(k); err != nil {
			return opened, closing, fmt.Errorf("open %s %s: %w", k.kind, k.addr, err)
		}
		opened = append(opened, k)
	}
	return opened, closing, nil
}

// switchCertFiles makes the encrypted listeners present the certificate of
// next's tls-cert and tls-key when live has either (the files are checked
// with the configuration, so this fails only if they changed since).
func (rl *reloader) switchCertFiles(next *serveOptions, live []string) error {
	certs := rl.listeners.certs
	if certs == nil || !slices.ContainsFunc(live, func(s string) bool { return s == "tls-cert" || s == "tls-key" }) {
		return nil
	}
	if err := certs.SetFiles(next.tlsCert, next.tlsKey); err != nil {
		return err
	}
	rl.log.Info("certificate switched", "file", next.tlsCert, "pin", certs.Pin())
	return nil
}

// closeListeners shuts listeners down, letting their queries in flight
// finish within --shutdown-timeout.
func (rl *reloader) closeListeners(keys []listenerKey) {
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rl.o.shutdownWithin)
	defer cancel()
	for _, k := range keys {
		if err := rl.listeners.stop(ctx, k); err != nil {
			rl.log.Warn("listener closed with queries still in flight", "kind", k.kind, "addr", k.addr, "err", err)
		}
	}
	rl.log.Info("listeners closed", "listeners", keysString(keys))
}

func keysString(keys []listenerKey) string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = k.kind + " " + k.addr
	}
	return strings.Join(s, ",")
}

// apply tells each part of the running serve the new values of the
// settings applied (already in rl.o); oldNTAs are the configured negative
// trust anchors before.
func (rl *reloader) apply(applied []string, oldNTAs []string) {
	o := rl.o
	ls := rl.listeners
	has := func(names ...string) bool {
		return slices.ContainsFunc(applied, func(s string) bool { return slices.Contains(names, s) })
	}
	if has("allow") {
		ls.base.Access.Set(o.allow)
	}
	if has("rate-limit", "rate-limit-burst", "rate-limit-slip", "rate-limit-exempt") {
		// Checked with the file (abuse.validate); the table's shape is not
		// a flag, so this cannot fail.
		if err := ls.base.RateLimit.Reconfigure(o.abuse.rateLimitConfig()); err != nil {
			rl.log.Error("rate limit not changed", "err", err)
		}
	}
	if has(rrlSettings...) && ls.base.RRL != nil {
		if err := ls.base.RRL.Reconfigure(o.abuse.rrl.config()); err != nil {
			rl.log.Error("response rate limit not changed", "err", err)
		}
	}
	if has("max-conns", "conns-per-client", "conns-per-network") {
		rl.setConnLimits()
	}
	if has("log-level") {
		if l, err := parseLevel(o.logLevel); err == nil {
			rl.level.Set(l)
		}
	}
	if has("query-log", "query-log-sample") {
		rl.qlog.set(o.queryLog, o.queryLogSample)
	}
	if has("negative-trust-anchor") {
		rl.updateNTAs(oldNTAs, o.negAnchors)
	}
}

// connLimiter is a front end whose connection limits change live.
type connLimiter interface {
	SetConnLimits(maxConns int, l transport.ConnLimits) error
}

// setConnLimits gives every stream front end, and those opened later, the
// connection limits of rl.o.
func (rl *reloader) setConnLimits() {
	ls := rl.listeners
	lc := rl.o.listenerConfig(nil, nil)
	ls.mu.Lock()
	ls.base.MaxConns, ls.base.Conns = lc.MaxConns, lc.Conns
	ls.mu.Unlock()
	for _, fe := range ls.list() {
		if c, ok := fe.(connLimiter); ok {
			if err := c.SetConnLimits(lc.MaxConns, lc.Conns); err != nil {
				rl.log.Error("connection limits not changed", "err", err)
			}
		}
	}
}

// updateNTAs takes the negative trust anchors removed from the
// configuration out of the running set and puts the added ones in (those
// added with `sextant ctl nta add` stay), flushing what is cached below
// each name changed: its data was validated, or not, under the old set.
func (rl *reloader) updateNTAs(old, now []string) {
	if rl.ntas == nil {
		return // validation is off
	}
	canon := func(l []string) []string {
		out := make([]string, len(l))
		for i, n := range l {
			out[i] = dns.CanonicalName(dns.Fqdn(n))
		}
		return out
	}
	old, now = canon(old), canon(now)
	for _, n := range old {
		if !slices.Contains(now, n) {
			if _, err := rl.ntas.Remove(n); err == nil {
				flushZone(rl.res, rl.answers, n)
			}
		}
	}
	for _, n := range now {
		if !slices.Contains(old, n) {
			if _, err := rl.ntas.Add(n); err == nil {
				flushZone(rl.res, rl.answers, n)
			}
		}
	}
}

// flushZone removes everything cached at or below zone from the RRset
// cache and empties the ready-answer cache (keyed by a hash of the
// question, it cannot be searched by name, and its answers may hold names
// of zone inside a CNAME chain). It returns the RRset entries removed.
func flushZone(res *resolver.Resolver, answers *cache.Answers, zone string) int {
	n := res.Cache().DeleteBelow(zone)
	if answers != nil {
		answers.Purge()
	}
	return n
}

// copyFlagValue sets dst's value to src's (flags of the same name in two
// parses of the same flags) and reports whether it could.
func copyFlagValue(dst, src *flag.Flag) bool {
	if dst == nil || src == nil {
		return false
	}
	d, s := reflect.ValueOf(dst.Value), reflect.ValueOf(src.Value)
	if d.Type() != s.Type() || d.Kind() != reflect.Pointer || !d.Elem().CanSet() {
		return false
	}
	d.Elem().Set(s.Elem())
	return true
}

// changedSettings are the flags whose effective values differ.
func changedSettings(running, next *flag.FlagSet) []string {
	var changed []string
	running.VisitAll(func(f *flag.Flag) {
		if n := next.Lookup(f.Name); n != nil && n.Value.String() != f.Value.String() {
			changed = append(changed, f.Name)
		}
	})
	return changed
}

// errNoValidation is the answer of nta commands when validation is off.
var errNoValidation = errors.New("DNSSEC validation is off in this serve: there are no trust anchors to override")

// reloadTimeout bounds how long ctl waits for a reload in the serve: a
// reload closing listeners waits up to --shutdown-timeout for them.
const reloadTimeout = time.Minute
