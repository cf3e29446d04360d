package authority

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func publishTestZone(t *testing.T, addr string) *Zone {
	t.Helper()
	z, err := ParseZone(strings.NewReader("$ORIGIN hook.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A "+addr+"\n"), "hook.test.", "t")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// TestPublishHook: every new version of a hooked zone, from Set, LoadFile
// or Reload, is served as the hook returns it; nil keeps the version
// serving; unavailable zones pass by the hook; Replace publishes only over
// the version it expects.
func TestPublishHook(t *testing.T) {
	var seen []*Zone
	marked := map[*Zone]*Zone{}
	hook := func(z *Zone) *Zone {
		seen = append(seen, z)
		if z.SOA().Mbox == "refuse.hook.test." {
			return nil
		}
		out := publishTestZone(t, "192.0.2.99") // stands for "the signed version"
		marked[out] = z
		return out
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "hook.zone")
	write := func(mbox string) {
		text := "$ORIGIN hook.test.\n$TTL 300\n@ SOA ns1 " + mbox + " 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n"
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("hostmaster")
	s := NewServer()
	if err := s.LoadFile(file, ""); err != nil {
		t.Fatal(err)
	}
	unhooked := s.Zone("hook.test.")
	s.SetPublishHook("hook.test", hook)
	if got := s.Zone("hook.test."); marked[got] != unhooked {
		t.Fatalf("installing the hook did not pass the served version through it")
	}
	// Reload: the file's new version goes through the hook.
	s.Reload()
	first := s.Zone("hook.test.")
	if marked[first] == nil || len(seen) != 2 {
		t.Fatalf("Reload bypassed the hook (%d calls)", len(seen))
	}
	// A version the hook refuses leaves the served one in place.
	write("refuse")
	s.Reload()
	if s.Zone("hook.test.") != first {
		t.Error("a refused version replaced the served one")
	}
	// Set goes through the hook.
	s.Set(publishTestZone(t, "192.0.2.2"))
	second := s.Zone("hook.test.")
	if marked[second] == nil || second == first {
		t.Error("Set bypassed the hook")
	}
	// Replace over a stale version does nothing; over the current one it
	// publishes without the hook.
	calls := len(seen)
	mine := publishTestZone(t, "192.0.2.3")
	if s.Replace(first, mine) || s.Zone("hook.test.") != second {
		t.Error("Replace over a stale version published")
	}
	if !s.Replace(second, mine) || s.Zone("hook.test.") != mine || len(seen) != calls {
		t.Error("Replace over the current version did not publish it as it is")
	}
	// Unavailable zones pass by the hook.
	s.Set(UnavailableZone("hook.test.", dns.ExtendedErrorCodeNotReady, "not yet"))
	if len(seen) != calls {
		t.Error("the hook saw an unavailable zone")
	}
	m := s.Answer(new(dns.Msg).SetQuestion("ns1.hook.test.", dns.TypeA))
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("unavailable zone answered %s", dns.RcodeToString[m.Rcode])
	}
	// Removing the hook: versions are served as they come.
	s.SetPublishHook("hook.test.", nil)
	plain := publishTestZone(t, "192.0.2.4")
	s.Set(plain)
	if s.Zone("hook.test.") != plain {
		t.Error("a removed hook still applies")
	}
}
