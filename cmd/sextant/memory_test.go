package main

import (
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
)

// TestCacheFlagsBoundTheReadyAnswers checks that --cache-size bounds the
// ready-to-send answer cache too (it was built with the package defaults,
// so memory was about twice the flag): of 8 entries, it gets 3.
func TestCacheFlagsBoundTheReadyAnswers(t *testing.T) {
	o, err := parseServeFlags([]string{"--cache-size", "8"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, answers, _, err := newResolver(&o.resolverOptions, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		name := fmt.Sprintf("n%d.example.", i)
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.Response = true
		rr, err := dns.NewRR(name + " 300 IN A 192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		m.Answer = []dns.RR{rr}
		answers.Put(cache.AnswerKey{Name: name, Type: dns.TypeA, Class: dns.ClassINET}, m)
	}
	if n := answers.Stats().Entries; n > 3 {
		t.Fatalf("ready-answer cache holds %d entries with --cache-size 8, want at most 3", n)
	}
}

func TestMemoryLimitFollowsCacheBytes(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Setenv("GOMEMLIMIT", "")
	setMemoryLimit(512<<20, log)
	if got, want := debug.SetMemoryLimit(-1), int64(512<<20+memoryOverhead); got != want {
		t.Errorf("memory limit %d, want --cache-max-bytes plus the overhead, %d", got, want)
	}

	debug.SetMemoryLimit(old)
	t.Setenv("GOMEMLIMIT", "1GiB")
	setMemoryLimit(512<<20, log)
	if got := debug.SetMemoryLimit(-1); got != old {
		t.Errorf("memory limit %d with GOMEMLIMIT set, want it left alone (%d)", got, old)
	}
}
