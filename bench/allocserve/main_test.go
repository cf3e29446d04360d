package main

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
)

var sink []*[64]byte

// TestReportCounters checks the counter line run.sh reads: three numbers,
// the allocation count rising after allocations.
func TestReportCounters(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go reportCounters(ln)
	read := func() []uint64 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(line)
		if len(fields) != len(counterNames) {
			t.Fatalf("line %q: want %d fields", line, len(counterNames))
		}
		vals := make([]uint64, len(fields))
		for i, f := range fields {
			if vals[i], err = strconv.ParseUint(f, 10, 64); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
		}
		return vals
	}
	// The runtime counts small allocations a span at a time, when a span
	// is handed to a P: up to a span's worth (128 objects of 64 bytes) per
	// P may have been counted before the first reading. Hence 10000
	// allocations and a margin of 1000.
	const allocs, margin = 10000, 1000
	before := read()
	for range allocs {
		sink = append(sink, new([64]byte))
	}
	after := read()
	if after[0] < before[0]+allocs-margin || after[1] < before[1]+64*(allocs-margin) {
		t.Errorf("counters %v then %v after %d allocations of 64 bytes", before, after, allocs)
	}
}
