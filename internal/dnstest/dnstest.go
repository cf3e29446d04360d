// Package dnstest holds what Sextant's tests share across packages, so that
// each helper is written once (as CoreDNS keeps plugin/test). Only tests
// import it.
package dnstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireToolsEnv is set to 1 by CI (.ci/run), which installs every program
// the tests use: there, a missing program fails the test that needs it
// instead of skipping it, so that no interop test passes by not running.
const RequireToolsEnv = "SEXTANT_REQUIRE_TOOLS"

// RequireTool returns the path of a program a test needs (a Debian
// package's dig, named, knotd, chromium, ...). It skips the test when the
// program is missing, or fails it when RequireToolsEnv is 1.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(RequireToolsEnv) == "1" {
			t.Fatalf("%s not installed (apt-get install it; .ci/run does)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return path
}

// FreeLoopbackPort returns a port free on 127.0.0.1 for both UDP and TCP,
// for a daemon (BIND, Knot, NSD) that binds only interface addresses.
func FreeLoopbackPort(t testing.TB) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP on 127.0.0.1")
	return 0
}

// StartDaemon runs a program in dir with its output in dir/NAME.log, kills
// it when the test ends, and shows the log when the test failed.
func StartDaemon(t testing.TB, dir, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := os.Create(filepath.Join(dir, filepath.Base(name)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr, cmd.Dir = out, out, dir
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("%s output:\n%s", name, b)
		}
	})
	return cmd
}
