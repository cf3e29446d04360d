package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/lab"
)

// TestCtlOperations: nta, flush --zone, dump-cache and querylog against a
// running serve.
func TestCtlOperations(t *testing.T) {
	s := startOpsServe(t, map[string]string{"listen": fmt.Sprintf("[%q]", opsListen)})
	www13, www8 := "www."+lab.SecureAlg13, "www."+lab.SecureAlg8
	ask := func(name string) (ad bool) {
		r, err := askFrom(opsClient, opsListen, name, 5*time.Second)
		if err != nil || len(r.Answer) == 0 {
			t.Errorf("%s: %v %v", name, r, err)
			return false
		}
		return r.AuthenticatedData
	}
	if !ask(www13) || !ask(www8) {
		t.Fatal("lab answers not validated")
	}

	t.Run("nta", func(t *testing.T) {
		if _, out, _ := ctl(s.socket, "nta", "list"); out != "no negative trust anchors\n" {
			t.Errorf("nta list: %q", out)
		}
		code, out, errOut := ctl(s.socket, "nta", "add", "SECURE13.test")
		if code != 0 || !strings.Contains(out, "validation is off at and below "+lab.SecureAlg13) {
			t.Fatalf("nta add: exit %d %s%s", code, out, errOut)
		}
		// The cached, validated answer was flushed: now insecure.
		if ask(www13) {
			t.Error("AD set below a negative trust anchor added at run time")
		}
		if !ask(www8) {
			t.Error("a zone beside the anchor lost validation")
		}
		if _, out, _ := ctl(s.socket, "nta", "add", lab.SecureAlg13); !strings.Contains(out, "already") {
			t.Errorf("second add: %q", out)
		}
		if _, out, _ := ctl(s.socket, "nta", "list"); out != lab.SecureAlg13+"\n" {
			t.Errorf("nta list: %q", out)
		}
		if code, _, _ := ctl(s.socket, "nta", "remove", lab.SecureAlg13); code != 0 {
			t.Fatal("nta remove failed")
		}
		if !ask(www13) {
			t.Error("validation not back after nta remove")
		}
		if code, _, errOut := ctl(s.socket, "nta", "add", "bad..name"); code != 1 || !strings.Contains(errOut, "not a domain name") {
			t.Errorf("bad name: exit %d %s", code, errOut)
		}
	})

	t.Run("flush --zone", func(t *testing.T) {
		ask(www13)
		askFrom(opsClient, opsListen, "nothing-here."+lab.SecureAlg13, 5*time.Second) // an NXDOMAIN entry
		ask(www8)
		code, out, errOut := ctl(s.socket, "flush", "--zone", lab.SecureAlg13)
		if code != 0 || !strings.Contains(out, "at or below "+lab.SecureAlg13) || strings.HasPrefix(out, "flushed 0 ") {
			t.Fatalf("flush --zone: exit %d %s%s", code, out, errOut)
		}
		// Everything of the zone must be fetched again, the zone beside not.
		if _, out, _ := ctl(s.socket, "trace", www13, "A"); !strings.Contains(out, www13+" A @") {
			t.Errorf("after flush --zone, the zone's name asks no server:\n%s", out)
		}
		if _, out, _ := ctl(s.socket, "trace", www8, "A"); strings.Contains(out, " @") {
			t.Errorf("flush --zone flushed a zone beside it:\n%s", out)
		}
	})

	t.Run("dump-cache", func(t *testing.T) {
		ask(www13)
		dir := t.TempDir()
		wd, _ := os.Getwd()
		defer os.Chdir(wd)
		os.Chdir(dir) // a relative FILE is made absolute by ctl
		code, out, errOut := ctl(s.socket, "dump-cache", "cache.txt")
		if code != 0 || !strings.Contains(out, filepath.Join(dir, "cache.txt")) {
			t.Fatalf("dump-cache: exit %d %s%s", code, out, errOut)
		}
		data, err := os.ReadFile(filepath.Join(dir, "cache.txt"))
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		if !strings.HasPrefix(text, "; sextant cache dump at DNS time ") {
			t.Errorf("no header:\n%.500s", text)
		}
		var wwwLine string
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, www13+"\t") && strings.Contains(line, "\tA\t") {
				wwwLine = line
			}
		}
		if !strings.HasSuffix(wwwLine, " ; secure") {
			t.Errorf("no secure A record of %s in the dump:\n%.2000s", www13, text)
		}
		if !strings.Contains(text, "\tRRSIG\t") || !strings.Contains(text, "\tNS\t") {
			t.Errorf("the dump lacks signatures or delegations:\n%.2000s", text)
		}
		if st, _ := os.Stat(filepath.Join(dir, "cache.txt")); st.Mode().Perm() != dumpFileMode {
			t.Errorf("dump mode %v", st.Mode())
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("files left beside the dump: %v", entries)
		}
		if code, _, errOut := ctl(s.socket, "dump-cache", filepath.Join(dir, "no", "such", "dir", "f")); code != 1 || !strings.Contains(errOut, "dump-cache") {
			t.Errorf("dump into a missing directory: exit %d %s", code, errOut)
		}
	})

	t.Run("querylog", func(t *testing.T) {
		if _, out, _ := ctl(s.socket, "querylog"); out != "query log off\n" {
			t.Errorf("querylog: %q", out)
		}
		if code, out, _ := ctl(s.socket, "querylog", "sample", "4"); code != 0 || out != "query log on, one query in 4\n" {
			t.Fatalf("querylog sample 4: %q", out)
		}
		before := strings.Count(s.log.String(), "msg=query ")
		for range 8 {
			ask(www13)
		}
		if got := strings.Count(s.log.String(), "msg=query ") - before; got != 2 {
			t.Errorf("one in 4 of 8 queries: %d lines logged", got)
		}
		// A SERVFAIL line says why.
		ctl(s.socket, "querylog", "on")
		bogus := "www." + lab.BogusSig
		if r, err := askFrom(opsClient, opsListen, bogus, 5*time.Second); err != nil || r.Rcode != dns.RcodeServerFailure {
			t.Fatalf("%s: %v %v, want SERVFAIL", bogus, r, err)
		}
		waitForLog(t, s.log, "name="+bogus+" type=A rcode=SERVFAIL ede=")
		for _, line := range strings.Split(s.log.String(), "\n") {
			if strings.Contains(line, "name="+bogus) && !strings.Contains(line, " why=") {
				t.Errorf("a SERVFAIL line without why: %s", line)
			}
		}
		ctl(s.socket, "querylog", "off")
		before = strings.Count(s.log.String(), "msg=query ")
		ask(www13)
		if strings.Count(s.log.String(), "msg=query ") != before {
			t.Error("a query logged with the log off")
		}
		if _, out, _ := ctl(s.socket, "stats"); !strings.Contains(out, `querylog="query log off"`) {
			t.Errorf("stats lack the query log:\n%s", out)
		}
	})
}
