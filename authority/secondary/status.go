package secondary

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// StatusFile is where, in the state directory, the status of every
// secondary zone is written after each refresh, for `sextant zone status`.
const StatusFile = "status.json"

// writeStatus writes Status() to the state directory (atomically, so a
// reader sees one whole snapshot).
func (m *Manager) writeStatus() {
	if m.opts.StateDir == "" {
		return
	}
	m.statusMu.Lock()
	defer m.statusMu.Unlock()
	st := m.Status()
	err := writeAtomic(filepath.Join(m.opts.StateDir, StatusFile), func(w *bufio.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	})
	if err != nil {
		m.opts.Log.Warn("secondary zone status not written", "err", err)
	}
}

// ReadStatus reads the status file a running server writes in dir (the
// Options.StateDir).
func ReadStatus(dir string) ([]Status, error) {
	b, err := os.ReadFile(filepath.Join(dir, StatusFile))
	if err != nil {
		return nil, fmt.Errorf("secondary zone status: %w", err)
	}
	var st []Status
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("secondary zone status %s: %w", filepath.Join(dir, StatusFile), err)
	}
	return st, nil
}
