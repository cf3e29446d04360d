package main

import (
	"strings"
	"testing"
	"time"
)

func TestStaleConfigFlags(t *testing.T) {
	tests := []struct {
		name    string
		o       resolverOptions
		wantErr string
	}{
		{name: "off", o: resolverOptions{serveStale: 0}},
		{name: "zones", o: resolverOptions{serveStale: time.Hour, staleZones: stringList{"corp.example=0", "Slow.Example.=2h"}}},
		{name: "zone without on", o: resolverOptions{staleZones: stringList{"a.example=1h"}}, wantErr: "needs serve-stale on"},
		{name: "no equals", o: resolverOptions{serveStale: time.Hour, staleZones: stringList{"a.example"}}, wantErr: "want ZONE=DURATION"},
		{name: "bad duration", o: resolverOptions{serveStale: time.Hour, staleZones: stringList{"a.example=soon"}}, wantErr: "not a duration"},
		{name: "negative", o: resolverOptions{serveStale: -time.Hour}, wantErr: "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.o.staleConfig()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (c == nil) != (tc.o.serveStale == 0) {
				t.Fatalf("config %+v for --serve-stale %v", c, tc.o.serveStale)
			}
			if c != nil && (len(c.Zones) != 2 || c.Zones["corp.example."] != 0 || c.Longest() != 2*time.Hour) {
				t.Fatalf("config %+v, want both zones and the longest limit 2h", c)
			}
		})
	}
}
