// Package dnstest holds what Sextant's tests share across packages, so that
// each helper is written once (as CoreDNS keeps plugin/test). Only tests
// import it.
package dnstest

import (
	"os"
	"os/exec"
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
