package dnstest

import (
	"net"
	"strconv"
	"testing"
	"time"
)

// StartRedis runs Debian's redis-server on ip and a free port, without
// persistence, in a temporary directory, and returns its address once it
// accepts connections. The server is killed when the test ends, or by
// calling the returned stop (for tests of what happens without it).
func StartRedis(t testing.TB, ip string) (addr string, stop func()) {
	t.Helper()
	bin := RequireTool(t, "redis-server")
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cmd := StartDaemon(t, t.TempDir(), bin, "--bind", ip, "--port", port, "--save", "", "--appendonly", "no",
		"--protected-mode", "no", "--daemonize", "no")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not come up: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Killing is enough to close its socket; StartDaemon's cleanup reaps it.
	return addr, func() { _ = cmd.Process.Kill() }
}
