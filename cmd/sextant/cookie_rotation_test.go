package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/transport"
)

// Cookie rotation and RRL tests of serve use 127.107.0.0/16
// (ARCHITECTURE.md): servers on 127.107.10.x.

// answerAll answers every query NOERROR with no records.
type answerAll struct{}

func (answerAll) ServeDNS(_ context.Context, w transport.ResponseWriter, r *transport.Request) {
	w.WriteMsg(new(dns.Msg).SetReply(r.Msg))
}

// cookieServe is a Do53 front end built, as serve builds it, from the
// abuse flags args; it returns its UDP address and the rotation.
func cookieServe(t *testing.T, addr string, args ...string) (string, *cookieRotation) {
	t.Helper()
	o := serveFlags(t, args...)
	lc := o.listenerConfig(answerAll{}, slog.New(slog.DiscardHandler))
	if err := o.abuse.attach(&lc); err != nil {
		t.Fatal(err)
	}
	lc.Addrs = []string{addr}
	s, err := transport.NewDo53(transport.Do53Config{ListenerConfig: lc})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	for _, a := range s.Addrs() {
		if u, ok := a.(*net.UDPAddr); ok {
			return u.String(), o.abuse.rotation
		}
	}
	t.Fatal("no UDP address")
	return "", nil
}

// askCookie sends a query with cookie (hex) and returns the answer's.
func askCookie(t *testing.T, server, cookie string) string {
	t.Helper()
	q := dnstest.Query("cookie.example.", dns.TypeA)
	q.SetEdns0(1232, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: cookie})
	r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(q, server)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range r.IsEdns0().Option {
		if c, ok := o.(*dns.EDNS0_COOKIE); ok {
			return c.Cookie
		}
	}
	t.Fatalf("no cookie in\n%v", r)
	return ""
}

const clientCookieHex = "0102030405060708"

// checkRotations: a cookie issued before a rotation is still accepted
// after it (the answer gives it back as it is), and refused after a
// second (the answer carries a fresh one).
func checkRotations(t *testing.T, server string, rotate func()) {
	t.Helper()
	issued := askCookie(t, server, clientCookieHex)
	if len(issued) != 48 || issued[:16] != clientCookieHex {
		t.Fatalf("issued cookie %q", issued)
	}
	rotate()
	if got := askCookie(t, server, issued); got != issued {
		t.Fatalf("after one rotation: answer cookie %s, want the valid %s back", got, issued)
	}
	rotate()
	if got := askCookie(t, server, issued); got == issued || got[:16] != clientCookieHex {
		t.Fatalf("after two rotations: answer cookie %s, want a fresh one for the stale %s", got, issued)
	}
}

// TestCookieRotationRandom: with a random secret serve rotates at each
// tick of --cookie-secret-rotation.
func TestCookieRotationRandom(t *testing.T) {
	server, rot := cookieServe(t, "127.107.10.1:0")
	if rot.every != defaultCookieRotation {
		t.Fatalf("rotation every %v, want %v", rot.every, defaultCookieRotation)
	}
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rot.run(ctx, ticks) }()
	defer func() { cancel(); <-done }()
	n := uint64(0)
	checkRotations(t, server, func() {
		ticks <- time.Now()
		n++
		for deadline := time.Now().Add(5 * time.Second); rot.Rotations() != n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no rotation after a tick")
			}
		}
	})
}

// TestCookieRotationStart: start runs the timer only for a random secret
// and a period; its stop ends it.
func TestCookieRotationStart(t *testing.T) {
	r := &cookieRotation{cookies: transport.NewServerCookies(transport.RandomCookieSecret(), nil), every: time.Millisecond,
		log: slog.New(slog.DiscardHandler)}
	stop := r.start(context.Background())
	for deadline := time.Now().Add(5 * time.Second); r.Rotations() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the timer does not rotate")
		}
	}
	stop()
	n := r.Rotations()
	time.Sleep(20 * time.Millisecond)
	if r.Rotations() != n {
		t.Error("rotations after stop")
	}
	for _, off := range []*cookieRotation{
		{cookies: r.cookies, every: 0, log: r.log},
		{cookies: r.cookies, every: time.Millisecond, file: "secret", log: r.log},
		nil,
	} {
		off.start(context.Background())()
		if off.Rotations() != 0 {
			t.Errorf("%+v rotated", off)
		}
	}
}

// TestCookieRotationFlags: a period under an hour would refuse cookies
// within their hour of validity, and is refused.
func TestCookieRotationFlags(t *testing.T) {
	for args, ok := range map[string]bool{
		"--cookie-secret-rotation=30m": false,
		"--cookie-secret-rotation=1h":  true,
		"--cookie-secret-rotation=0":   true,
	} {
		o := serveFlags(t, args)
		var lc transport.ListenerConfig
		if err := o.abuse.attach(&lc); (err == nil) != ok {
			t.Errorf("%s: err %v", args, err)
		}
	}
}

// TestCookieRotationReload: with --cookie-secret-file a reload re-reads
// the file and rotates when the secret changed (the anycast operators'
// rotation); an unchanged file, or a broken one, changes nothing.
func TestCookieRotationReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cookie-secret")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("e5e973e5a6b2a43f48e7dc849e37bfcf")
	server, rot := cookieServe(t, "127.107.10.2:0", "--cookie-secret-file="+file)
	rl := &reloader{o: &serveOptions{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rl.o.abuse.rotation = rot

	issued := askCookie(t, server, clientCookieHex)
	rl.reload("test") // unchanged
	write("not a secret")
	rl.reload("test") // broken: the running secret stays
	if got := askCookie(t, server, issued); got != issued || rot.Rotations() != 0 {
		t.Fatalf("unchanged or broken file: cookie %s (want %s back), %d rotations", got, issued, rot.Rotations())
	}
	secrets := []string{"11111111111111111111111111111111", "22222222222222222222222222222222"}
	checkRotations(t, server, func() {
		write(secrets[0])
		secrets = secrets[1:]
		rl.reload("test")
	})
	if rot.Rotations() != 2 {
		t.Errorf("%d rotations, want 2", rot.Rotations())
	}

	// Two servers of one anycast address, given the same file, accept each
	// other's cookies before and after the rotation.
	other, otherRot := cookieServe(t, "127.107.10.3:0", "--cookie-secret-file="+file)
	if got := askCookie(t, other, askCookie(t, server, clientCookieHex)); len(got) != 48 {
		t.Fatal("no cookie")
	}
	fromServer := askCookie(t, server, clientCookieHex)
	if got := askCookie(t, other, fromServer); got != fromServer {
		t.Errorf("the other server refused the shared secret's cookie: %s, want %s", got, fromServer)
	}
	write("33333333333333333333333333333333")
	rl.reload("test")
	if ok, err := otherRot.reloadFile(); !ok || err != nil {
		t.Fatalf("other server's reload: %v %v", ok, err)
	}
	if got := askCookie(t, other, fromServer); got != fromServer {
		t.Errorf("after both rotated: %s, want %s back", got, fromServer)
	}
}

// digCookieRE finds dig's COOKIE line.
var digCookieRE = regexp.MustCompile(`COOKIE: ([0-9a-f]+)`)

// TestCookieRotationDig: dig +cookie's server cookie survives one
// rotation and is replaced after a second.
func TestCookieRotationDig(t *testing.T) {
	dig := dnstest.RequireTool(t, "dig")
	server, rot := cookieServe(t, "127.107.10.4:0")
	host, port, _ := net.SplitHostPort(server)
	ask := func(cookie string) string {
		t.Helper()
		arg := "+cookie"
		if cookie != "" {
			arg += "=" + cookie
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, dig, "@"+host, "-p", port, arg, "+tries=1", "+time=3", "cookie.example.", "A").CombinedOutput()
		m := digCookieRE.FindStringSubmatch(string(out))
		if err != nil || m == nil || len(m[1]) != 48 || !strings.Contains(string(out), "status: NOERROR") {
			t.Fatalf("dig %s: %v\n%s", arg, err, out)
		}
		return m[1]
	}
	issued := ask("")
	rot.rotateRandom()
	if got := ask(issued); got != issued {
		t.Fatalf("after one rotation dig got %s, want %s back", got, issued)
	}
	rot.rotateRandom()
	if got := ask(issued); got == issued || got[:16] != issued[:16] {
		t.Fatalf("after two rotations dig got %s, want a fresh server cookie", got)
	}
}
