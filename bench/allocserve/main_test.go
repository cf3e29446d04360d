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
	before := read()
	for range 1000 {
		sink = append(sink, new([64]byte))
	}
	after := read()
	if after[0] < before[0]+1000 || after[1] < before[1]+64000 {
		t.Errorf("counters %v then %v after 1000 allocations of 64 bytes", before, after)
	}
}
