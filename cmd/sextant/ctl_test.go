package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority/secondary"
	"github.com/sextant-dns/sextant/lab"
)

// ctlServe runs serve on listen (127.84.3.0/24) with the lab's root, a
// local zone, a DoT listener and a control socket, and returns the socket.
func ctlServe(t *testing.T, listen, zonePath, stateDir string) (socket string, log *syncBuffer) {
	t.Helper()
	dir := startLab(t)
	socket = filepath.Join(t.TempDir(), "control.sock")
	ctx, cancel := context.WithCancel(context.Background())
	log = &syncBuffer{}
	exit := make(chan int, 1)
	host, _, _ := net.SplitHostPort(listen)
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", listen, "--dot", net.JoinHostPort(host, "853"),
			"--root-hints", filepath.Join(dir, lab.FileRootHints), "--trust-anchor", filepath.Join(dir, lab.FileRootDS),
			"--zone", zonePath, "--state-dir", stateDir, "--control-socket", socket}, log, log)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exit:
		case <-time.After(5 * time.Second):
			t.Error("serve did not shut down")
		}
		if _, err := os.Lstat(socket); !os.IsNotExist(err) {
			t.Errorf("the control socket outlives serve: %v", err)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := ctlExchange(socket, "stats", time.Second); err == nil {
			return socket, log
		}
		if time.Now().After(deadline) {
			t.Fatalf("no control socket\n%s", log.String())
		}
	}
}

// ctl runs `sextant ctl --socket socket args...` and returns its exit
// status and output.
func ctl(socket string, args ...string) (int, string, string) {
	var stdout, stderr syncBuffer
	code := run(context.Background(), append([]string{"ctl", "--socket", socket}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// statValue reads key=N from stats output.
func statValue(t *testing.T, stats, key string) int64 {
	t.Helper()
	for _, line := range strings.Split(stats, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			return n
		}
	}
	t.Fatalf("stats lack %s:\n%s", key, stats)
	return 0
}

// TestCtlCommands: each command of `sextant ctl` against a running serve.
func TestCtlCommands(t *testing.T) {
	const listen = "127.84.3.1:53"
	zonePath := filepath.Join(t.TempDir(), "corp.zone")
	writeZone := func(addr string) {
		t.Helper()
		z := "$ORIGIN corp.internal.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 10.0.0.53\nwww A " + addr + "\n"
		if err := os.WriteFile(zonePath, []byte(z), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeZone("10.0.0.1")
	stateDir := t.TempDir()
	socket, log := ctlServe(t, listen, zonePath, stateDir)

	st, err := os.Stat(socket)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Errorf("control socket mode %v, want a socket with 0600", st.Mode())
	}

	c := &dns.Client{Timeout: 2 * time.Second}
	ask := func(name string) *dns.Msg {
		t.Helper()
		r, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), listen)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	www := "www." + lab.SecureAlg13
	ask(www)
	ask(www) // the second one from the ready-answer cache

	t.Run("stats", func(t *testing.T) {
		code, out, errOut := ctl(socket, "stats")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if statValue(t, out, "cache.rrset.entries") == 0 || statValue(t, out, "cache.answers.hits") == 0 ||
			statValue(t, out, "cache.answers.entries") == 0 {
			t.Errorf("caches look empty:\n%s", out)
		}
		statValue(t, out, "uptime_seconds")
		statValue(t, out, "frontend.tcp.conns.open")
		if statValue(t, out, "frontend.dot.conns.open") != 0 {
			t.Errorf("a DoT connection is open:\n%s", out)
		}
	})

	t.Run("trace on the server's cache", func(t *testing.T) {
		code, out, errOut := ctl(socket, "trace", www, "A")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		// Cached: answered with no server asked.
		if !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "flags: qr rd ra ad;") || strings.Contains(out, " @") {
			t.Errorf("trace of a cached name:\n%s", out)
		}
	})

	t.Run("flush NAME", func(t *testing.T) {
		_, before, _ := ctl(socket, "stats")
		code, out, errOut := ctl(socket, "flush", www)
		if code != 0 || !strings.Contains(out, "flushed "+www) {
			t.Fatalf("exit %d: %s%s", code, out, errOut)
		}
		_, after, _ := ctl(socket, "stats")
		if statValue(t, after, "cache.answers.entries") != 0 ||
			statValue(t, after, "cache.rrset.entries") >= statValue(t, before, "cache.rrset.entries") {
			t.Errorf("flush left the entries:\nbefore\n%s\nafter\n%s", before, after)
		}
		// The name must now be fetched again: the trace asks a server.
		_, out, _ = ctl(socket, "trace", www, "A")
		if !strings.Contains(out, www+" A @") {
			t.Errorf("after flush, the trace asks no server:\n%s", out)
		}
	})

	t.Run("flush --all", func(t *testing.T) {
		ask(www)
		if code, _, errOut := ctl(socket, "flush", "--all"); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		_, after, _ := ctl(socket, "stats")
		if statValue(t, after, "cache.rrset.entries") != 0 || statValue(t, after, "cache.answers.entries") != 0 {
			t.Errorf("entries left after flush --all:\n%s", after)
		}
	})

	t.Run("reload", func(t *testing.T) {
		writeZone("10.0.0.2")
		if code, _, errOut := ctl(socket, "reload"); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			r := ask("www.corp.internal.")
			if len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "10.0.0.2" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("reload did not re-read the zone\n%s", log.String())
			}
		}
	})

	t.Run("zone status", func(t *testing.T) {
		if code, out, _ := ctl(socket, "zone", "status"); code != 0 || out != "no secondary zones\n" {
			t.Errorf("without secondaries: exit %d, %q", code, out)
		}
		// The same report as `sextant zone status` from the status file.
		if err := os.MkdirAll(filepath.Join(stateDir, "secondary"), 0o700); err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal([]secondary.Status{{Zone: "hidden.test.", Loaded: true, Serial: 7}})
		if err := os.WriteFile(filepath.Join(stateDir, "secondary", secondary.StatusFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		var want syncBuffer
		if code := run(context.Background(), []string{"zone", "status", "--state-dir", stateDir}, &want, &want); code != 0 {
			t.Fatalf("zone status: %s", want.String())
		}
		code, out, _ := ctl(socket, "zone", "status")
		if code != 0 || out != want.String() || !strings.Contains(out, "serial:          7") {
			t.Errorf("ctl zone status:\n%s\nwant\n%s", out, want.String())
		}
		if code, _, errOut := ctl(socket, "zone", "status", "other.test"); code != 1 || !strings.Contains(errOut, "not a secondary zone") {
			t.Errorf("unknown zone: exit %d, %s", code, errOut)
		}
	})

	t.Run("bad commands", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"frobnicate"}, `unknown command "frobnicate"`},
			{[]string{"nta", "frobnicate"}, "usage: nta add NAME"},
			{[]string{"querylog", "sample", "0"}, "not a number of at least 1"},
			{[]string{"dump-cache"}, "usage: dump-cache FILE"},
			{[]string{"flush", "--zone"}, "usage: flush NAME"},
			{[]string{"flush"}, "usage: flush NAME"},
			{[]string{"trace", "www.example."}, "usage: trace NAME TYPE"},
			{[]string{"trace", "www.example.", "NOTATYPE"}, "unknown type"},
			{[]string{"stats", "extra"}, "unexpected arguments"},
			{[]string{strings.Repeat("x", 2000)}, "one line of less than 1024 bytes"},
		} {
			code, _, errOut := ctl(socket, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("%.40q: exit %d, %q; want exit 1 and %q", tc.args, code, errOut, tc.want)
			}
		}
		// The server bounds a request the client did not check.
		conn, err := net.Dial("unix", socket)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte(strings.Repeat("x", 5000) + "\n"))
		var r controlReply
		if err := json.NewDecoder(conn).Decode(&r); err != nil || r.OK || !strings.Contains(r.Error, "at most 1024 bytes") {
			t.Errorf("oversized request: %+v %v", r, err)
		}
	})

	t.Run("a second serve does not take the socket", func(t *testing.T) {
		if _, err := listenControl(socket); err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("listen on a live socket: %v", err)
		}
	})
}

// TestCtlWithoutServe: ctl says where it looked.
func TestCtlWithoutServe(t *testing.T) {
	code, _, errOut := ctl(filepath.Join(t.TempDir(), "none.sock"), "stats")
	if code != 1 || !strings.Contains(errOut, "--control-socket") {
		t.Errorf("exit %d, %q", code, errOut)
	}
}

// TestControlSocketReplacesStale: a socket file left by a serve that died
// is replaced, a regular file is not.
func TestControlSocketReplacesStale(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	l2, err := listenControl(stale)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, nil, 0o600)
	if _, err := listenControl(regular); err == nil {
		t.Error("a regular file was replaced by the socket")
	}
}
