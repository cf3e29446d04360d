package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sextant-dns/sextant/transport"
)

// TestAbuseOptionsAttach: the flags build shared cookies and limiter, or
// none when turned off, and bad values are refused before anything binds.
func TestAbuseOptionsAttach(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("e5e973e5a6b2a43f48e7dc849e37bfcf\n"), 0o600)
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("not hex"), 0o600)
	cases := []struct {
		name             string
		args             []string
		cookies, limiter bool
		errContains      string
	}{
		{"defaults", nil, true, true, ""},
		{"both off", []string{"--cookies=false", "--rate-limit=0"}, false, false, ""},
		{"secret file", []string{"--cookie-secret-file=" + good}, true, true, ""},
		{"bad secret", []string{"--cookie-secret-file=" + bad}, false, false, "32 hex digits"},
		{"missing secret", []string{"--cookie-secret-file=" + filepath.Join(dir, "none")}, false, false, "no such file"},
		{"negative rate", []string{"--rate-limit=-1"}, false, false, "--rate-limit"},
		{"negative slip", []string{"--rate-limit-slip=-1"}, false, false, "slip"},
		{"slip 0 drops all", []string{"--rate-limit-slip=0", "--rate-limit-exempt=192.0.2.0/24"}, true, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := serveFlags(t, c.args...)
			var lc transport.ListenerConfig
			err := o.abuse.attach(&lc)
			if c.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), c.errContains) {
					t.Fatalf("err %v, want one about %q", err, c.errContains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The limiter is always built (a reload may turn it on); off
			// means disabled.
			if lc.RateLimit == nil {
				t.Fatal("no rate limiter built")
			}
			if (lc.Cookies != nil) != c.cookies || lc.RateLimit.Enabled() != c.limiter {
				t.Fatalf("cookies %v limiter %v, want %v %v", lc.Cookies != nil, lc.RateLimit.Enabled(), c.cookies, c.limiter)
			}
		})
	}
	if c := serveFlags(t, "--rate-limit-slip=0").abuse.rateLimitConfig(); c.Slip != -1 {
		t.Errorf("--rate-limit-slip=0 gives transport slip %d, want -1 (drop all)", c.Slip)
	}
}
