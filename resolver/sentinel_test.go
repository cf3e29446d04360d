package resolver

import "testing"

func TestParseSentinel(t *testing.T) {
	tests := []struct {
		name string
		isTA bool
		tag  uint16
		ok   bool
	}{
		{"root-key-sentinel-is-ta-20326.example.", true, 20326, true},
		{"root-key-sentinel-not-ta-00042.example.", false, 42, true},
		{"Root-Key-Sentinel-IS-TA-65535.example.", true, 65535, true},
		{"root-key-sentinel-is-ta-65536.example.", false, 0, false},
		{"root-key-sentinel-is-ta-2032.example.", false, 0, false},
		{"root-key-sentinel-is-ta-203260.example.", false, 0, false},
		{"root-key-sentinel-is-ta-2032a.example.", false, 0, false},
		{"root-key-sentinel-is-ta-20326.", true, 20326, true},
		{"root-key-sentinel-is-ta-20326", false, 0, false},
		{"x.root-key-sentinel-is-ta-20326.example.", false, 0, false},
		{"www.example.", false, 0, false},
	}
	for _, tt := range tests {
		isTA, tag, ok := parseSentinel(tt.name)
		if isTA != tt.isTA || tag != tt.tag || ok != tt.ok {
			t.Errorf("parseSentinel(%q) = %v %d %v, want %v %d %v", tt.name, isTA, tag, ok, tt.isTA, tt.tag, tt.ok)
		}
	}
}
