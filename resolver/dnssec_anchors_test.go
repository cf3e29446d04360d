package resolver

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/validator"
)

// TestDNSSECManagedAnchors: with RFC 5011 managed anchors starting from
// the root DS, the first question triggers a refresh that resolves the DS
// to the root KSK (state Valid) and saves the state; the saved state alone
// validates in a new resolver; the next refresh waits for RFC 5011's
// interval on the DNS clock.
func TestDNSSECManagedAnchors(t *testing.T) {
	t0 := time.Now().UTC().Truncate(time.Second)
	l := startDNSSECLab(t, clock.NewManual(t0))
	clk := clock.NewManual(t0)
	m, err := validator.NewManagedAnchors(l.RootDS(), t0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var saved []string
	newResolver := func(m *validator.ManagedAnchors) (*Resolver, *dnssec) {
		save := func(m *validator.ManagedAnchors) error {
			var b bytes.Buffer
			err := m.Save(&b)
			mu.Lock()
			saved = append(saved, b.String())
			mu.Unlock()
			return err
		}
		r := newLabResolver(t, l, func(c *Config) { c.Clock = clk; c.DNSSEC = &DNSSECConfig{Managed: m, SaveManaged: save} })
		return r, r.dnssec
	}
	waitRefresh := func(d *dnssec, ask func()) {
		t.Helper()
		done := d.anchorRefreshDone()
		ask()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("no anchor refresh")
		}
	}
	r, d := newResolver(m)
	name := "www." + lab.SecureAlg13
	waitRefresh(d, func() {
		if m, _ := ask(t, r, name, dns.TypeA, true, false, false); !m.AuthenticatedData {
			t.Fatalf("with managed anchors: %s without AD", dns.RcodeToString[m.Rcode])
		}
	})
	mu.Lock()
	state := strings.Join(saved, "")
	mu.Unlock()
	ksk := l.RootKeys()[0].(*dns.DNSKEY)
	if len(saved) != 1 || !strings.Contains(state, validator.KeyValid.String()) || !strings.Contains(state, ksk.PublicKey) || strings.Contains(state, " DS ") {
		t.Fatalf("saved state (%d saves):\n%s", len(saved), state)
	}
	next := d.anchors.next.Load()
	interval := time.Duration(next - clk.Now().UnixNano())
	t.Logf("state:\n%snext refresh in %v", state, interval)
	if interval < time.Hour || interval > 15*24*time.Hour {
		t.Errorf("refresh interval %v outside RFC 5011's 1 hour .. 15 days", interval)
	}
	// Not due yet: no refresh.
	ask(t, r, "www."+lab.SecureAlg15, dns.TypeA, true, false, false)
	if d.anchors.running.Load() || d.anchors.next.Load() != next {
		t.Error("a refresh ran before it was due")
	}
	// Due: another refresh, nothing changed, nothing saved again.
	clk.Advance(interval + time.Second)
	waitRefresh(d, func() { ask(t, r, name, dns.TypeA, true, false, false) })
	if d.anchors.next.Load() <= next {
		t.Error("the due refresh did not reschedule")
	}
	mu.Lock()
	if len(saved) != 1 {
		t.Errorf("%d saves, want 1 (the state did not change)", len(saved))
	}
	mu.Unlock()

	// The saved state alone (a DNSKEY anchor now) validates.
	loaded, err := validator.LoadManagedAnchors(strings.NewReader(state))
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := newResolver(loaded)
	if m, _ := ask(t, r2, name, dns.TypeA, true, false, false); !m.AuthenticatedData {
		t.Fatalf("from the saved state: %s without AD", dns.RcodeToString[m.Rcode])
	}
}

// TestDNSSECManagedAnchorsWithoutTraffic: once started, the resolver
// refreshes the managed anchors with no client question at all.
func TestDNSSECManagedAnchorsWithoutTraffic(t *testing.T) {
	l := startDNSSECLab(t, clock.System{})
	m, err := validator.NewManagedAnchors(l.RootDS(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	saved := make(chan string, 4)
	save := func(m *validator.ManagedAnchors) error {
		var b bytes.Buffer
		err := m.Save(&b)
		saved <- b.String()
		return err
	}
	r := newLabResolver(t, l, func(c *Config) {
		c.Clock = clock.System{}
		c.DNSSEC = &DNSSECConfig{Managed: m, SaveManaged: save}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.Start(ctx)
	select {
	case state := <-saved:
		if !strings.Contains(state, validator.KeyValid.String()) {
			t.Fatalf("state after the idle refresh:\n%s", state)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no refresh without traffic")
	}
}
