package clock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"@2030-01-02 03:04:05", time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), false},
		{"@2030-01-02 03:04:05\n", time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), false},
		{"2030-01-02 03:04:05", time.Time{}, true},
		{"@yesterday", time.Time{}, true},
		{"", time.Time{}, true},
	}
	for _, tc := range tests {
		got, err := ParseTimestamp(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseTimestamp(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if !got.Equal(tc.want) {
			t.Errorf("ParseTimestamp(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestFileFollowsContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "now")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("@2030-01-01 00:00:00\n")
	c, err := NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first := c.Now()
	if d := first.Sub(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)); d < 0 || d > time.Minute {
		t.Fatalf("Now() = %v, want just after 2030-01-01", first)
	}
	// Time runs on in real time.
	time.Sleep(20 * time.Millisecond)
	if !c.Now().After(first) {
		t.Fatal("clock did not run on")
	}
	// A new content moves the clock, even if written twice in one mtime tick.
	write("@2031-06-01 12:00:00\n")
	if got := c.Now(); got.Year() != 2031 {
		t.Fatalf("after rewrite Now() = %v, want 2031", got)
	}
	// A malformed rewrite keeps the last good time.
	write("garbage")
	if got := c.Now(); got.Year() != 2031 {
		t.Fatalf("after garbage Now() = %v, want 2031 kept", got)
	}
	if c.Err() == nil {
		t.Fatal("Err() = nil after garbage")
	}
}

func TestFileMissingFallsBackToSystem(t *testing.T) {
	c, err := NewFile(filepath.Join(t.TempDir(), "absent"))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(c.Now()); d < -time.Second || d > time.Second {
		t.Fatalf("Now() differs from system time by %v", d)
	}
}

func TestFileRejectsBadInitialContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "now")
	os.WriteFile(path, []byte("nonsense"), 0o644)
	if _, err := NewFile(path); err == nil {
		t.Fatal("NewFile accepted a malformed timestamp file")
	}
}

func TestManual(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewManual(start)
	m.Advance(time.Hour)
	if got := m.Now(); !got.Equal(start.Add(time.Hour)) {
		t.Fatalf("Now() = %v", got)
	}
}
