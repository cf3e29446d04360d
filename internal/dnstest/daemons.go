package dnstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BIND is the named.conf of a BIND 9 a test runs. Every test's named
// keeps its files in Dir, listens on Addr and Port only (no IPv6), has no
// control channel and does not validate; the rest is the test's.
type BIND struct {
	Dir  string
	Addr string // the listen-on address, 127.0.0.1 unless set
	Port int
	// Recursion makes it a resolver; without it, it is authoritative only.
	Recursion bool
	// Options are more statements of the options block, one a line.
	Options []string
	// Conf follows the options: keys, zones.
	Conf string
}

// String is the named.conf text.
func (b BIND) String() string {
	addr := b.Addr
	if addr == "" {
		addr = "127.0.0.1"
	}
	recursion := "no"
	if b.Recursion {
		recursion = "yes"
	}
	var opts strings.Builder
	for _, o := range b.Options {
		opts.WriteString("\t" + o + "\n")
	}
	return fmt.Sprintf(`options {
	directory %[1]q;
	pid-file %[2]q;
	session-keyfile %[3]q;
	managed-keys-directory %[1]q;
	listen-on port %[4]d { %[5]s; };
	listen-on-v6 { none; };
	recursion %[6]s;
	dnssec-validation no;
%[7]s};
controls { };
%[8]s`, b.Dir, filepath.Join(b.Dir, "named.pid"), filepath.Join(b.Dir, "session.key"), b.Port, addr, recursion, opts.String(), b.Conf)
}

// StartBIND writes Dir/named.conf and runs named on it in the foreground
// (one worker) until the test ends (StartDaemon: its output is shown when
// the test fails). It skips without named (RequireTool).
func StartBIND(t testing.TB, b BIND) *exec.Cmd {
	t.Helper()
	named := RequireTool(t, "named")
	path := filepath.Join(b.Dir, "named.conf")
	writeConf(t, path, b.String())
	return StartDaemon(t, b.Dir, named, "-g", "-c", path, "-n", "1")
}

// Knot is the knot.conf of a Knot DNS a test runs: its files (run
// directory, pid file, database) in Dir, listening on Listen
// ("address@port"), logging to stderr; Conf is the rest (keys, remotes,
// ACLs, modules, templates, zones).
type Knot struct {
	Dir    string
	Listen string
	Conf   string
}

// String is the knot.conf text.
func (k Knot) String() string {
	return fmt.Sprintf(`server:
    rundir: %[1]q
    listen: %[2]s
    user: root:root
    pidfile: %[3]q
database:
    storage: %[1]q
%[4]slog:
  - target: stderr
    any: info
`, k.Dir, k.Listen, filepath.Join(k.Dir, "knot.pid"), k.Conf)
}

// StartKnot writes Dir/knot.conf and runs knotd on it until the test
// ends (StartDaemon); it returns the configuration's path, for knotc. It
// skips without knotd (RequireTool).
func StartKnot(t testing.TB, k Knot) (conf string) {
	t.Helper()
	knotd := RequireTool(t, "knotd")
	conf = filepath.Join(k.Dir, "knot.conf")
	writeConf(t, conf, k.String())
	StartDaemon(t, k.Dir, knotd, "-c", conf)
	return conf
}

func writeConf(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
