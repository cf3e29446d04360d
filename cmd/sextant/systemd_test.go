package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/lab"
)

// unitFile is the systemd unit shipped beside the command.
const unitFile = "sextant.service"

// unitConfigFile is the configuration file the unit reads; the test reads
// the example file in its place.
const unitConfigFile = "/etc/sextant/sextant.toml"

// TestSystemdUnitVerifies: systemd-analyze accepts the unit, and the flags
// of its ExecStart are ones `sextant serve` takes (with the example
// configuration file).
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := dnstest.RequireTool(t, "systemd-analyze")
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	// verify insists that ExecStart's program exists: point it at this
	// test binary.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyPath := filepath.Join(dir, unitFile)
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/sextant", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	var args []string
	for _, line := range strings.Split(string(unit), "\n") {
		if rest, ok := strings.CutPrefix(line, "ExecStart=/usr/local/bin/sextant serve "); ok {
			rest = strings.ReplaceAll(rest, "${STATE_DIRECTORY}", dir)
			rest = strings.ReplaceAll(rest, unitConfigFile, exampleConfig)
			args = strings.Fields(rest)
		}
	}
	if args == nil {
		t.Fatal("no `ExecStart=/usr/local/bin/sextant serve` line in the unit")
	}
	if _, err := parseServeFlags(args, &syncBuffer{}); err != nil {
		t.Fatalf("ExecStart flags %q: %v", args, err)
	}
	if !strings.Contains(string(unit), "serve --config "+unitConfigFile) {
		t.Errorf("ExecStart does not read %s", unitConfigFile)
	}
	// The reload checks the file first, with the same flags.
	var check []string
	for _, line := range strings.Split(string(unit), "\n") {
		if rest, ok := strings.CutPrefix(line, "ExecReload=/usr/local/bin/sextant check-config "); ok {
			rest = strings.ReplaceAll(rest, "${STATE_DIRECTORY}", dir)
			check = strings.Fields(strings.ReplaceAll(rest, unitConfigFile, exampleConfig))
		}
	}
	var checkOut syncBuffer
	if check == nil {
		t.Error("no ExecReload running check-config")
	} else if code := run(context.Background(), append([]string{"check-config"}, check...), &checkOut, &checkOut); code != 0 {
		t.Errorf("ExecReload check-config %q: exit %d\n%s", check, code, checkOut.String())
	}
}

// TestServeNotifiesSystemd: with NOTIFY_SOCKET set (as systemd does for
// Type=notify), serve sends READY=1 once it answers, RELOADING=1 then
// READY=1 around a SIGHUP, and STOPPING=1 at shutdown.
func TestServeNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(want string) {
		t.Helper()
		select {
		case m := <-msgs:
			first, _, _ := strings.Cut(m, "\n")
			if first != want {
				t.Fatalf("sd_notify message %q, want %s first", m, want)
			}
			sc := bufio.NewScanner(strings.NewReader(m))
			for sc.Scan() {
				if !strings.Contains(sc.Text(), "=") {
					t.Fatalf("sd_notify line %q is not KEY=VALUE", sc.Text())
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s from serve", want)
		}
	}

	dir := startDNSSECLab(t)
	t.Setenv("NOTIFY_SOCKET", sock)
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	stderr := &syncBuffer{}
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", "127.52.255.23:53",
			"--root-hints", filepath.Join(dir, lab.FileRootHints), "--trust-anchor", filepath.Join(dir, lab.FileRootDS)}, stderr, stderr)
	}()
	next("READY=1")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	next("RELOADING=1")
	next("READY=1")
	cancel()
	next("STOPPING=1")
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("serve exited %d\n%s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestServeLogsSecurityWarnings: settings that weaken what the resolver
// guarantees are said at every start, not only by check-config.
func TestServeLogsSecurityWarnings(t *testing.T) {
	dir := startDNSSECLab(t)
	log := startServe(t, "127.52.255.24:53", "--root-hints", filepath.Join(dir, lab.FileRootHints),
		"--trust-anchor", filepath.Join(dir, lab.FileRootDS), "--negative-trust-anchor", "example.",
		"--allow", "0.0.0.0/0")
	for _, want := range []string{"security: DNSSEC validation is off at and below example.", "security: allow admits every address"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, log.String())
		}
	}
}
