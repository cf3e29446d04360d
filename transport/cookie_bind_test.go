package transport

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// TestBINDForwarderCookies: BIND 9 as a resolver forwarding to Sextant
// sends client cookies (its default), learns Sextant's server cookie and
// returns it on later queries, which Sextant finds valid. BIND listens on
// 127.0.0.1 with a free port (it binds only interface addresses).
func TestBINDForwarderCookies(t *testing.T) {
	named := dnstest.RequireTool(t, "named")
	ck := NewServerCookies(RandomCookieSecret(), nil)
	udp, _, _ := startDo53(t, "127.83.0.8:0", Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1), Cookies: ck}})
	host, port, _ := net.SplitHostPort(udp)
	dir := t.TempDir()
	bindPort := dnstest.FreeLoopbackPort(t)
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion yes;
	allow-recursion { any; };
	dnssec-validation no;
	forward only;
	forwarders { %[3]s port %[4]s; };
	send-cookie yes;
};
controls { };
`, dir, bindPort, host, port)
	path := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(named, "-g", "-c", path, "-n", "1")
	logf, err := os.Create(filepath.Join(dir, "named.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("named output:\n%s", b)
		}
	})
	bind := fmt.Sprintf("127.0.0.1:%d", bindPort)
	c := &dns.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		r, _, err := c.Exchange(query(fmt.Sprintf("n%d.cookie.example.", i), dns.TypeA), bind)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
			if s := ck.Stats(); s.ClientOnly >= 1 && s.Valid >= 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("BIND never returned our server cookie: stats %+v, last %v %v", ck.Stats(), err, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := ck.Stats(); s.Invalid != 0 {
		t.Errorf("BIND sent %d invalid server cookies: %+v", s.Invalid, s)
	}
}
