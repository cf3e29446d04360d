package main

// The control channel of a running `sextant serve`: `--control-socket PATH`
// opens a Unix socket only its owner may use, and `sextant ctl COMMAND`
// sends one command over it.
//
// Protocol (one request per connection): the client sends the command as
// one line of words ("flush example.com.", "trace www.example. AAAA"),
// at most maxControlRequest bytes; the server answers with one JSON object
// {"ok": true, "output": "..."} or {"ok": false, "error": "..."} and closes.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority/secondary"
	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/transport"
)

const (
	// maxControlRequest bounds a request line: the longest command is a
	// trace of a 253-octet name with its type.
	maxControlRequest = 1024
	// maxControlResponse bounds what ctl reads back: a trace of a long
	// resolution is tens of KiB.
	maxControlResponse = 4 << 20
	// maxControlConns bounds the control connections served at once: an
	// operator runs one command at a time, scripts a few.
	maxControlConns = 4
	// controlReadTimeout bounds the arrival of the request line, and
	// controlWriteTimeout the write of the answer, so a stuck client
	// cannot hold a slot.
	controlReadTimeout  = 5 * time.Second
	controlWriteTimeout = 5 * time.Second
	// controlTraceTimeout bounds a `trace` resolution, like a client's
	// patience with one query.
	controlTraceTimeout = 10 * time.Second
	// maxTraceLines bounds a trace's output; a resolution within the
	// resolver's budgets sends far fewer queries.
	maxTraceLines = 5000
	// controlSocketMode: only the owner may connect (connecting to a
	// Unix socket takes write permission).
	controlSocketMode = 0o600
	// defaultControlSocket is where ctl looks without --socket: under the
	// default --state-dir, where the systemd unit's StateDirectory is.
	defaultControlSocket = defaultStateDir + "/control.sock"
)

// flushTypes are the RRset types `flush NAME` removes from the cache: the
// cache keys entries by name and type and has no per-name index, so the
// command names the types people change (negative entries included, as
// they are kept under the type asked for).
var flushTypes = []uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeDNAME, dns.TypeNS, dns.TypeSOA,
	dns.TypeDS, dns.TypeDNSKEY, dns.TypeMX, dns.TypeTXT, dns.TypePTR, dns.TypeSRV,
	dns.TypeSVCB, dns.TypeHTTPS, dns.TypeCAA, dns.TypeTLSA, dns.TypeNAPTR, dns.TypeSSHFP,
}

// controlOptions is the flag of serve that opens the socket.
type controlOptions struct {
	controlSocket string
}

func (o *controlOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.controlSocket, "control-socket", "", "Unix socket `PATH` (mode 0600) for `sextant ctl`, e.g. "+defaultControlSocket+" (default: none)")
}

// controlServer answers `sextant ctl` over the control socket.
type controlServer struct {
	ln       *net.UnixListener
	path     string
	started  time.Time
	res      *resolver.Resolver
	answers  *cache.Answers
	ops      *controlOps
	stateDir string
	log      *slog.Logger

	slots chan struct{}
	wg    sync.WaitGroup
	ctx   context.Context
	stop  context.CancelFunc
}

// startControl opens the control socket when --control-socket is set; the
// returned server is nil otherwise.
func startControl(o *controlOptions, res *resolver.Resolver, answers *cache.Answers, ops *controlOps, stateDir string, log *slog.Logger) (*controlServer, error) {
	if o.controlSocket == "" {
		return nil, nil
	}
	ln, err := listenControl(o.controlSocket)
	if err != nil {
		return nil, fmt.Errorf("--control-socket: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &controlServer{
		ln: ln, path: o.controlSocket, started: time.Now(), res: res, answers: answers,
		ops: ops, stateDir: stateDir, log: log,
		slots: make(chan struct{}, maxControlConns), ctx: ctx, stop: stop,
	}
	s.wg.Add(1)
	go s.accept()
	log.Info("control socket open", "path", o.controlSocket)
	return s, nil
}

// listenControl binds the socket owner-only. A socket file left by a serve
// that died is replaced; one another serve still answers on is not.
func listenControl(path string) (*net.UnixListener, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use by a running serve", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// Before the first Accept; peerAllowed also checks each client.
	if err := os.Chmod(path, controlSocketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return ln, nil
}

// Close stops accepting, cancels commands running and waits for them.
func (s *controlServer) Close() {
	if s == nil {
		return
	}
	s.stop()
	s.ln.Close() // removes the socket file (net.UnixListener unlinks it)
	s.wg.Wait()
}

func (s *controlServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("control socket accept failed; ctl no longer answered", "err", err)
			}
			return
		}
		select {
		case s.slots <- struct{}{}:
		default:
			writeControlReply(c, controlReply{Error: "busy: too many control connections"})
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.slots }()
			defer c.Close()
			s.serveConn(c)
		}()
	}
}

// controlReply is the one JSON object answering a request.
type controlReply struct {
	OK     bool   `json:"ok"`
	Output string `json:"output,omitempty"`
	Error  string `json:"error,omitempty"`
}

func writeControlReply(c net.Conn, r controlReply) {
	_ = c.SetWriteDeadline(time.Now().Add(controlWriteTimeout))
	_ = json.NewEncoder(c).Encode(r)
}

func (s *controlServer) serveConn(c *net.UnixConn) {
	if err := peerAllowed(c); err != nil {
		s.log.Warn("control connection refused", "err", err)
		writeControlReply(c, controlReply{Error: err.Error()})
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(controlReadTimeout))
	line, err := bufio.NewReaderSize(io.LimitReader(c, maxControlRequest+1), maxControlRequest+1).ReadString('\n')
	if err != nil || len(line) > maxControlRequest {
		msg := "the request must be one line of at most 1024 bytes"
		if err != nil && !errors.Is(err, io.EOF) {
			msg = fmt.Sprintf("read request: %v", err)
		}
		writeControlReply(c, controlReply{Error: msg})
		return
	}
	out, err := s.do(strings.Fields(line))
	if err != nil {
		writeControlReply(c, controlReply{Error: err.Error()})
		return
	}
	writeControlReply(c, controlReply{OK: true, Output: out})
}

// do runs one command.
func (s *controlServer) do(words []string) (string, error) {
	if len(words) == 0 {
		return "", errors.New("empty command")
	}
	args := words[1:]
	switch words[0] {
	case "stats":
		return s.stats(), noArgs(args)
	case "flush":
		return s.flush(args)
	case "reload":
		if err := noArgs(args); err != nil {
			return "", err
		}
		return s.reload()
	case "zone":
		if len(args) == 0 || args[0] != "status" || len(args) > 2 {
			return "", errors.New("usage: zone status [ZONE]")
		}
		return s.zoneStatus(args[1:])
	case "trace":
		return s.trace(args)
	case "nta":
		return s.nta(args)
	case "dump-cache":
		return s.dumpCache(args)
	case "querylog":
		return s.queryLog(args)
	}
	return "", fmt.Errorf("unknown command %q; commands: %s", words[0], ctlCommands)
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q", args)
	}
	return nil
}

// stats prints key=value lines: uptime, both caches, the connection
// admission of each stream front end, and the PROXY headers taken and
// refused (with --proxy-from).
func (s *controlServer) stats() string {
	var b strings.Builder
	fmt.Fprintf(&b, "uptime_seconds=%d\n", int64(time.Since(s.started).Seconds()))
	writeCacheStats(&b, "cache.rrset", s.res.Cache().Stats())
	if s.answers != nil {
		writeCacheStats(&b, "cache.answers", s.answers.Stats())
	}
	if p := s.ops.listeners.base.Proxy; p != nil { // one, shared by every front end
		st := p.Stats()
		fmt.Fprintf(&b, "proxy.relayed=%d\nproxy.local=%d\nproxy.refused_untrusted=%d\nproxy.refused_missing=%d\nproxy.refused_malformed=%d\n",
			st.Relayed, st.Local, st.Untrusted, st.Missing, st.Malformed)
	}
	for _, n := range summedConnStats(s.ops.listeners.list()) {
		name, st := n.name, n.stats
		fmt.Fprintf(&b, "%s.conns.open=%d\n%s.conns.refused_total=%d\n%s.conns.refused_client=%d\n%s.conns.refused_network=%d\n%s.conns.evicted=%d\n%s.conns.idle_closed=%d\n",
			name, st.Open, name, st.RefusedTotal, name, st.RefusedClient, name, st.RefusedPrefix, name, st.Evicted, name, st.IdleClosed)
	}
	var rot *cookieRotation
	if s.ops.reload != nil {
		rot = s.ops.reload.o.abuse.rotation // set at start, never changed
	}
	writeRRLStats(&b, s.ops.listeners.base, rot)
	fmt.Fprintf(&b, "querylog=%q\n", s.ops.qlog.status())
	writeSharedCacheStats(&b, s.res)
	return b.String()
}

func writeCacheStats(b *strings.Builder, prefix string, st cache.Stats) {
	fmt.Fprintf(b, "%s.entries=%d\n%s.hits=%d\n%s.misses=%d\n%s.evictions=%d\n%s.expired=%d\n",
		prefix, st.Entries, prefix, st.Hits, prefix, st.Misses, prefix, st.Evictions, prefix, st.Expired)
}

// namedConnStats are one stream front end's connection statistics.
type namedConnStats struct {
	name  string
	stats transport.ConnStats
}

// frontEndConnStats are the connection statistics of a stream front end,
// in a fixed order (Do53 UDP has no connections).
func frontEndConnStats(fe frontEnd) []namedConnStats {
	switch f := fe.(type) {
	case *transport.Do53:
		return []namedConnStats{{"frontend.tcp", f.TCPConnStats()}}
	case *transport.DoT:
		return []namedConnStats{{"frontend.dot", f.ConnStats()}}
	case *transport.DoH:
		return []namedConnStats{{"frontend.doh", f.ConnStats()}, {"frontend.doh3", f.H3ConnStats()}}
	case *transport.DoQ:
		return []namedConnStats{{"frontend.doq", f.ConnStats()}}
	}
	return nil
}

// flush removes NAME's RRsets of flushTypes from the RRset cache and
// empties the ready-answer cache (it is keyed by a hash of the question,
// and its answers may hold NAME inside a CNAME chain); --zone ZONE removes
// everything at or below ZONE; --all empties both.
func (s *controlServer) flush(args []string) (string, error) {
	if len(args) == 2 && args[0] == "--zone" {
		return s.flushZone(args[1])
	}
	if len(args) != 1 || args[0] == "--zone" {
		return "", errors.New("usage: flush NAME | flush --zone ZONE | flush --all")
	}
	if args[0] == "--all" {
		s.res.Cache().Purge()
		s.answers.Purge()
		return "flushed the RRset cache and the ready-answer cache\n", nil
	}
	name := dns.Fqdn(args[0])
	if _, ok := dns.IsDomainName(name); !ok {
		return "", fmt.Errorf("%q is not a domain name", args[0])
	}
	name = dnsname.Canonical(name)
	for _, t := range flushTypes {
		s.res.Cache().Delete(name, t, dns.ClassINET)
	}
	s.answers.Purge()
	return fmt.Sprintf("flushed %s (%d types) and the ready-answer cache\n", name, len(flushTypes)), nil
}

// reload does what SIGHUP does and says what it applied and what waits
// for a restart; a failed reload is an error.
func (s *controlServer) reload() (string, error) {
	r := s.ops.reload.reload("sextant ctl")
	if r.err != nil {
		return "", errors.New(strings.TrimSpace(r.String()))
	}
	return r.String(), nil
}

// zoneStatus is what `sextant zone status` prints for this serve.
func (s *controlServer) zoneStatus(args []string) (string, error) {
	st, err := secondary.ReadStatus(filepath.Join(s.stateDir, "secondary"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "no secondary zones\n", nil
		}
		return "", err
	}
	var b strings.Builder
	for _, z := range st {
		if len(args) == 1 && z.Zone != dnsname.Canonical(args[0]) {
			continue
		}
		printZoneStatus(&b, z, time.Now())
	}
	if b.Len() == 0 && len(args) == 1 {
		return "", fmt.Errorf("%s is not a secondary zone of this serve", args[0])
	}
	return b.String(), nil
}

// trace resolves NAME TYPE inside the server, on its cache, printing every
// server asked and then the answer, as `sextant query --trace` does.
func (s *controlServer) trace(args []string) (string, error) {
	if len(args) != 2 {
		return "", errors.New("usage: trace NAME TYPE")
	}
	name := dns.Fqdn(args[0])
	if _, ok := dns.IsDomainName(name); !ok {
		return "", fmt.Errorf("%q is not a domain name", args[0])
	}
	qtype, ok := dns.StringToType[strings.ToUpper(args[1])]
	if !ok {
		return "", fmt.Errorf("unknown type %q", args[1])
	}
	var b strings.Builder
	lines := 0
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(s.ctx, controlTraceTimeout)
	defer cancel()
	ctx = resolver.WithTrace(ctx, func(e resolver.TraceEvent) {
		mu.Lock()
		defer mu.Unlock()
		if lines++; lines <= maxTraceLines {
			fmt.Fprintf(&b, ";; %s\n", e)
		}
	})
	began := time.Now()
	result, failure, err := resolveForReport(ctx, s.res, name, qtype)
	if err != nil {
		return "", err
	}
	mu.Lock()
	defer mu.Unlock()
	if lines > maxTraceLines {
		fmt.Fprintf(&b, ";; (%d more trace lines left out)\n", lines-maxTraceLines)
	}
	newQueryReport(name, qtype, result, failure, time.Since(began), "sextant serve (control socket)").writeText(&b)
	return b.String(), nil
}

// ctlMain is `sextant ctl [--socket PATH] COMMAND [ARGS]`.
func ctlMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sextant ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", defaultControlSocket, "the --control-socket `PATH` of the serve")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sextant ctl [--socket PATH] "+ctlCommands)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	words, err := absolutePaths(fs.Args())
	if err != nil {
		return err
	}
	reply, err := ctlExchange(*socket, strings.Join(words, " "), *timeout)
	if err != nil {
		return err
	}
	if !reply.OK {
		return fmt.Errorf("serve: %s", reply.Error)
	}
	_, err = io.WriteString(stdout, reply.Output)
	return err
}

// ctlExchange sends one command and reads the reply.
func ctlExchange(socket, command string, timeout time.Duration) (controlReply, error) {
	var r controlReply
	if strings.ContainsAny(command, "\r\n") || len(command) >= maxControlRequest {
		return r, errors.New("a command is one line of less than 1024 bytes")
	}
	c, err := net.DialTimeout("unix", socket, timeout)
	if err != nil {
		return r, fmt.Errorf("%w (is serve running with --control-socket %s?)", err, socket)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return r, fmt.Errorf("send: %w", err)
	}
	if err := json.NewDecoder(io.LimitReader(c, maxControlResponse)).Decode(&r); err != nil {
		return r, fmt.Errorf("reply: %w", err)
	}
	return r, nil
}
