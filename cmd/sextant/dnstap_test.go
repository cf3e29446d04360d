package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/lab"
)

// TestDnstapFileReadByBIND: serve writes each client query and response to
// --dnstap-file, over the full path, the UDP fast path and TCP, and BIND's
// dnstap-read reads them back.
func TestDnstapFileReadByBIND(t *testing.T) {
	reader := dnstest.RequireTool(t, "dnstap-read")
	path := filepath.Join(t.TempDir(), "sextant.dnstap")
	s := startOpsServe(t, map[string]string{
		"listen":          fmt.Sprintf("[%q]", opsListen),
		"dnstap-file":     fmt.Sprintf("%q", path),
		"dnstap-identity": `"tap-test"`,
	})
	www := "www." + lab.SecureAlg13
	for range 2 { // resolved, then from the ready-answer cache (fast path)
		if _, err := askFrom(opsClient, opsListen, www, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	c, err := tcpFrom(opsClient, opsListen)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exchangeOn(c, www); err != nil {
		t.Fatal(err)
	}
	c.Close()
	s.stop() // the file ends with the stream's STOP frame
	out, err := exec.Command(reader, path).CombinedOutput()
	if err != nil {
		t.Fatalf("dnstap-read: %v\n%s", err, out)
	}
	var cq, cr, tcp int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.Contains(line, opsClient+":") || !strings.Contains(line, strings.TrimSuffix(www, ".")+"/IN/A") {
			t.Errorf("dnstap-read line without the client or the question: %q", line)
		}
		switch {
		case strings.Contains(line, " CQ "):
			cq++
		case strings.Contains(line, " CR "):
			cr++
		}
		if strings.Contains(line, " TCP ") {
			tcp++
		}
	}
	if cq != 3 || cr != 3 || tcp != 2 {
		t.Errorf("want 3 client queries, 3 responses, 2 over TCP; got %d, %d, %d:\n%s", cq, cr, tcp, out)
	}
	// The identity and the response's records are in the full print.
	full, err := exec.Command(reader, "-p", path).CombinedOutput()
	if err != nil {
		t.Fatalf("dnstap-read -p: %v\n%s", err, full)
	}
	if !strings.Contains(string(full), "127.0.2.13") || !strings.Contains(string(full), dns.RcodeToString[dns.RcodeSuccess]) {
		t.Errorf("dnstap-read -p lacks the answer:\n%s", full)
	}
	y, _ := exec.Command(reader, "-y", path).CombinedOutput()
	if !strings.Contains(string(y), "tap-test") {
		t.Errorf("dnstap-read -y lacks the identity:\n%.1500s", y)
	}
}
