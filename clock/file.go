package clock

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// timestampLayout is libfaketime's absolute timestamp-file format, after '@'.
const timestampLayout = "2006-01-02 15:04:05"

// File is a clock that follows a file in libfaketime's timestamp-file format
// ("@YYYY-MM-DD HH:MM:SS", UTC). When the file's content changes, Now becomes
// that time and runs on in real time from there. Every call to Now checks the
// file by path with one stat, so a test can move time mid-run; the file is only
// read again when its size or modification time changed.
//
// Until the file holds a valid timestamp, File reads the system clock.
type File struct {
	path string

	mu      sync.Mutex
	modTime time.Time
	size    int64
	content []byte
	base    time.Time // the file's time
	since   time.Time // real (monotonic) time at which base was observed
	valid   bool
	lastErr error
}

// NewFile returns a clock that follows the timestamp file at path. An error is
// returned if the file exists but does not hold a valid timestamp; a missing
// file is allowed (the system clock is used until it appears).
func NewFile(path string) (*File, error) {
	f := &File{path: path}
	f.refresh()
	if f.lastErr != nil && !os.IsNotExist(f.lastErr) {
		return nil, f.lastErr
	}
	return f, nil
}

// Now returns the file's time plus the real time elapsed since it was read.
// The stat happens before the lock is taken, so concurrent callers (every
// cache lookup asks the clock) do not queue behind one another's syscall.
func (f *File) Now() time.Time {
	st, err := os.Stat(f.path)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshLocked(st, err)
	if !f.valid {
		return time.Now()
	}
	return f.base.Add(time.Since(f.since))
}

// Err reports the last problem reading the file, if any.
func (f *File) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

func (f *File) refresh() {
	st, err := os.Stat(f.path)
	f.mu.Lock()
	f.refreshLocked(st, err)
	f.mu.Unlock()
}

// refreshLocked takes in the file's state as a stat just found it (st, or
// the error): it reads the file again only when its size or modification
// time changed.
func (f *File) refreshLocked(st os.FileInfo, err error) {
	if err != nil {
		f.lastErr = err
		return
	}
	if f.valid && st.ModTime().Equal(f.modTime) && st.Size() == f.size {
		return
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.lastErr = err
		return
	}
	f.modTime, f.size = st.ModTime(), st.Size()
	data = bytes.TrimSpace(data)
	if f.valid && bytes.Equal(data, f.content) {
		return
	}
	t, err := ParseTimestamp(string(data))
	if err != nil {
		f.lastErr = fmt.Errorf("clock file %s: %w", f.path, err)
		return
	}
	f.content = append(f.content[:0], data...)
	f.base, f.since, f.valid, f.lastErr = t, time.Now(), true, nil
}

// ParseTimestamp parses libfaketime's absolute form "@YYYY-MM-DD HH:MM:SS" (UTC).
func ParseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "@") {
		return time.Time{}, fmt.Errorf("timestamp %q: want \"@YYYY-MM-DD HH:MM:SS\"", s)
	}
	t, err := time.ParseInLocation(timestampLayout, strings.TrimSpace(s[1:]), time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", s, err)
	}
	return t, nil
}
