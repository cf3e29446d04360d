package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/miekg/dns"
)

// File names WriteFiles uses inside its directory.
const (
	FileRootHints = "root.hints"
	FileRootDS    = "root.ds"
	FileRootKey   = "root.key"
)

// WriteFiles writes root.hints (root NS and server addresses), root.ds
// (the trust anchor as DS) and root.key (the root KSK as DNSKEY) into dir,
// in zone-file syntax, creating dir if needed.
func (l *Lab) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lab files: %w", err)
	}
	files := []struct {
		name, comment string
		rrs           []dns.RR
	}{
		{FileRootHints, "root hints of the Sextant lab", l.RootHints()},
		{FileRootDS, "trust anchor (root DS) of the Sextant lab", l.RootDS()},
		{FileRootKey, "root KSK of the Sextant lab", l.RootKeys()},
	}
	for _, f := range files {
		var b strings.Builder
		fmt.Fprintf(&b, "; %s (servers in %s/16)\n", f.comment, l.base)
		for _, rr := range f.rrs {
			b.WriteString(rr.String())
			b.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("lab files: %w", err)
		}
	}
	return nil
}
