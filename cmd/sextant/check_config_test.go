package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Loopback block of the config-file tests: 127.82.0.0/16 (ARCHITECTURE.md).
const (
	configServeListen = "127.82.0.1:53"
	configFileListen  = "127.82.0.2:53"
	configDeadRoot    = "127.82.0.99"
)

// rootDS is the IANA root's KSK-2017 DS, a well-formed trust anchor file.
const rootDS = ". 86400 IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n"

// writeFile writes text into dir/name and returns the path.
func writeFile(t *testing.T, dir, name, text string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), perm); err != nil {
		t.Fatal(err)
	}
	return p
}

// deadHints are root hints naming a server of this block where nothing
// listens: serve starts without a lab, and its priming fails on loopback.
func deadHints(t *testing.T) string {
	return writeFile(t, t.TempDir(), "root.hints", ". 3600000 NS a.root.test.\na.root.test. 3600000 A "+configDeadRoot+"\n", 0o644)
}

func checkConfig(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"check-config"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestCheckConfigPrintsEffectiveConfiguration: the output names each
// value's source, warns that custom root hints without an anchor turn
// validation off, and is itself a configuration file giving the same.
func TestCheckConfigPrintsEffectiveConfiguration(t *testing.T) {
	path := writeConfig(t, "root-hints = \""+deadHints(t)+"\"\n[cache]\nsize = 5000\n")
	code, out, errOut := checkConfig(t, path, "--log-level", "debug")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"# WARNING: DNSSEC validation is OFF: root-hints is set without trust-anchor",
		"cache-size = 5000  # " + path + ":3\n",
		"log-level = \"debug\"  # command line\n",
		"no-dnssec = false  # default\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	again := effective(serveFlags(t, "--config", writeConfig(t, out)))
	for name, want := range effective(serveFlags(t, "--config", path, "--log-level", "debug")) {
		if name != configFlag && again[name] != want {
			t.Errorf("%s: the printed configuration gives %s, want %s", name, again[name], want)
		}
	}
}

// TestCheckConfigSecurityWarnings: each setting that weakens security is
// said, and a plain configuration has no warning.
func TestCheckConfigSecurityWarnings(t *testing.T) {
	dir := t.TempDir()
	hints, anchor := deadHints(t), writeFile(t, dir, "root.ds", rootDS, 0o644)
	for _, tc := range []struct {
		name, file string
		args       []string
		perm       os.FileMode
		want       string // "" means no warning at all
	}{
		{"defaults", "", nil, 0o600, ""},
		{"custom roots with their anchor", "root-hints = \"" + hints + "\"\ntrust-anchor = [\"" + anchor + "\"]\n", nil, 0o600, ""},
		{"custom roots without an anchor", "root-hints = \"" + hints + "\"\n", nil, 0o600, "DNSSEC validation is OFF: root-hints is set without trust-anchor"},
		{"anchor on the command line", "root-hints = \"" + hints + "\"\n", []string{"--trust-anchor", anchor}, 0o600, ""},
		{"no-dnssec", "no-dnssec = true\n", nil, 0o600, "DNSSEC validation is OFF (no-dnssec)"},
		{"negative trust anchor", "negative-trust-anchor = [\"corp.example\"]\n", nil, 0o600, "validation is off at and below corp.example"},
		{"open resolver", "allow = [\"0.0.0.0/0\"]\n", nil, 0o600, "allow admits every address"},
		{"proxy from anyone", "proxy-from = [\"::/0\"]\n", nil, 0o600, "proxy-from trusts every address"},
		{"proxy from a load balancer", "proxy-from = [\"192.0.2.10\"]\n", nil, 0o600, ""},
		{"metrics on loopback", "metrics-listen = \"127.0.0.1:9153\"\n", nil, 0o600, ""},
		{"metrics on every interface", "metrics-listen = \":9153\"\n", nil, 0o600, "metrics-listen :9153 is not a loopback address"},
		{"clock file", "clock-file = \"" + writeFile(t, dir, "clock", "@2026-01-01 00:00:00\n", 0o644) + "\"\n", nil, 0o600, "DNS time follows clock-file"},
		{"self-signed", "dot = [\"127.82.0.1:853\"]\n", nil, 0o600, "without tls-cert serve a self-signed certificate"},
		{"tsig secret readable by others", "tsig-key = [\"hmac-sha256:k:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\"]\n", nil, 0o644, "holds TSIG secrets (tsig-key) and is readable by other users"},
		{"tsig secret in a private file", "tsig-key = [\"hmac-sha256:k:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\"]\n", nil, 0o600, ""},
		{"tsig secret on the command line", "", []string{"--tsig-key", "hmac-sha256:k:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}, 0o600, "tsig-key on the command line is visible"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "sextant.toml", tc.file, tc.perm)
			code, out, errOut := checkConfig(t, append([]string{path}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
			var warnings []string
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "# WARNING: ") {
					warnings = append(warnings, line)
				}
			}
			switch {
			case tc.want == "" && len(warnings) > 0:
				t.Errorf("unexpected warnings %q", warnings)
			case tc.want != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.want)):
				t.Errorf("warnings %q, want one saying %q", warnings, tc.want)
			}
			if strings.Contains(out, "c2VjcmV0") {
				t.Errorf("a TSIG secret is printed:\n%s", out)
			}
		})
	}
}

// TestCheckConfigFailures: check-config exits 1 on a mistake in the file
// and on a setting that serve would refuse before starting, and writes
// nothing (a missing RFC 5011 state file stays missing).
func TestCheckConfigFailures(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "root.anchors")
	for _, tc := range []struct{ name, file, want string }{
		{"unknown key", "\nlisten-addr = [\"127.0.0.1:53\"]\n", "sextant.toml:2: listen-addr: unknown key"},
		{"zone file missing", "zone = [\"" + filepath.Join(dir, "missing.zone") + "\"]\n", "--zone"},
		{"listen address", "listen = [\"127.0.0.1\"]\n", "--listen \"127.0.0.1\": want ADDR:PORT"},
		{"metrics address", "metrics-listen = \"127.0.0.1\"\n", "--metrics-listen \"127.0.0.1\": want ADDR:PORT"},
		{"tls half", "tls-cert = \"/x.pem\"\n", "--tls-cert and --tls-key go together"},
		{"log level", "log-level = \"loud\"\n", "--log-level \"loud\""},
		{"root hints missing", "root-hints = \"" + filepath.Join(dir, "none.hints") + "\"\n", "--root-hints"},
		{"secondary spec", "secondary = [\"zone=example.com\"]\n", "--secondary"},
		{"anchor state cannot start", "root-hints = \"" + deadHints(t) + "\"\n", "does not exist yet and there are no anchors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "sextant.toml", tc.file+"trust-anchor-state = \""+state+"\"\n", 0o600)
			code, out, errOut := checkConfig(t, path)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, tc.want)
			}
			if out != "" {
				t.Errorf("a failed check printed a configuration:\n%s", out)
			}
		})
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("check-config touched the trust-anchor state file: %v", err)
	}
	corrupt := writeFile(t, dir, "corrupt.anchors", "not a state file\n", 0o600)
	if code, _, errOut := checkConfig(t, writeConfig(t, "trust-anchor-state = \""+corrupt+"\"\n")); code != 1 || !strings.Contains(errOut, "--trust-anchor-state") {
		t.Errorf("corrupt state file: exit %d, %q", code, errOut)
	}
	if code, _, _ := checkConfig(t); code != 2 {
		t.Errorf("no FILE: exit %d, want 2", code)
	}
}

// TestServeConfigFileAndSIGHUP runs serve from a file: the command line
// overrides the file's listener, the start says loudly that validation is
// off, and SIGHUP loads an added zone file, names the settings that wait
// for a restart, and keeps running on a file with a mistake.
func TestServeConfigFileAndSIGHUP(t *testing.T) {
	dir := t.TempDir()
	zone := func(origin, addr string) string {
		return writeFile(t, dir, origin+"zone", "$ORIGIN "+origin+"\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 10.0.0.53\nwww A "+addr+"\n", 0o644)
	}
	first, second := zone("first.internal.", "10.0.0.1"), zone("second.internal.", "10.0.0.2")
	hints := deadHints(t)
	config := func(zones string, cacheSize int) string {
		return "listen = [\"" + configFileListen + "\"]\nroot-hints = \"" + hints + "\"\nzone = [" + zones + "]\n" +
			fmt.Sprintf("[cache]\nsize = %d\n", cacheSize)
	}
	path := writeConfig(t, config(`"`+first+`"`, 1000))
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"serve", "--config", path, "--listen", configServeListen}, &stderr, &stderr)
	}()
	defer func() { cancel(); <-exit }()

	c := &dns.Client{Timeout: time.Second}
	answer := func(server, name string) string {
		q := new(dns.Msg).SetQuestion(name, dns.TypeA)
		resp, _, err := c.Exchange(q, server)
		if err != nil || len(resp.Answer) != 1 {
			return ""
		}
		return resp.Answer[0].(*dns.A).A.String()
	}
	waitAnswer := func(name, want string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); answer(configServeListen, name) != want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no answer %s\n%s", name, want, stderr.String())
			}
		}
	}
	waitAnswer("www.first.internal.", "10.0.0.1")
	if got := answer(configFileListen, "www.first.internal."); got != "" {
		t.Errorf("the file's listener answers although --listen overrides it: %s", got)
	}
	waitForLog(t, &stderr, `level=WARN msg="DNSSEC validation is off: --root-hints was given without --trust-anchor`)

	hup := func() {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Dir(path), filepath.Base(path), config(`"`+first+`", "`+second+`"`, 2000), 0o600)
	hup()
	waitAnswer("www.second.internal.", "10.0.0.2")
	waitForLog(t, &stderr, `msg="configuration changed; these settings take effect at the next restart" file=`+path+` keys=cache-size`)

	writeFile(t, filepath.Dir(path), filepath.Base(path), "bogus = 1\n", 0o600)
	hup()
	waitForLog(t, &stderr, `msg="configuration reload failed; the running configuration stays"`)
	if !strings.Contains(stderr.String(), path+":1: bogus: unknown key") {
		t.Errorf("the failed reload does not say where:\n%s", stderr.String())
	}
	waitAnswer("www.first.internal.", "10.0.0.1")
	waitAnswer("www.second.internal.", "10.0.0.2")
}
