package lab

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

func TestMain_RunsUntilCancelled(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out dnstest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, []string{"--out", dir, "--addr-base", "127.23.0.0", "--bulk", "10", "--delay-slow", "50ms"}, &out)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Serving until interrupted") {
		if time.Now().After(deadline) {
			t.Fatalf("Main did not get ready: %s", out.String())
		}
		select {
		case err := <-done:
			t.Fatalf("Main returned early: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	text := out.String()
	for _, want := range []string{"127.23.0.1", HostSlow, "delay 50ms", "REFUSED", "drops all",
		"sextant serve --root-hints " + filepath.Join(dir, FileRootHints) + " --trust-anchor " + filepath.Join(dir, FileRootDS) + " --listen 127.0.0.1:5353"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, c := range Cases() {
		if !strings.Contains(text, c.Name) {
			t.Errorf("output lacks case %s", c.Name)
		}
	}
	for _, f := range []string{FileRootHints, FileRootDS, FileRootKey} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Main: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Main did not stop after cancel")
	}
}

func TestMainBadFlags(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{{"--addr-base", "nonsense"}, {"--bulk", "x"}, {"extra"}, {"--addr-base", "10.0.0.0"}} {
		if err := Main(context.Background(), args, &out); err == nil {
			t.Errorf("Main(%q) succeeded", args)
		}
	}
}

// TestREADMEListsEveryCase keeps the documentation table in step with Cases.
func TestREADMEListsEveryCase(t *testing.T) {
	text, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range Cases() {
		if !strings.Contains(string(text), "| "+c.Name+" |") {
			t.Errorf("README.md has no row for case %s", c.Name)
		}
		if !strings.Contains(string(text), string(c.Expect)) {
			t.Errorf("README.md never mentions %s", c.Expect)
		}
	}
}
