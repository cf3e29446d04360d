package secondary

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
)

// A zone's state is two files in the state directory:
//   NAME.zone     the last transferred version, as a zone file
//   NAME.refresh  the DNS-clock time (Unix seconds) of the last successful
//                 refresh, from which the zone's expiry is counted again
//                 after a restart
// Both are replaced by writing a new file, syncing it and renaming it over
// the old one, so that a crash leaves the old or the new file, never half.

// stateFile returns the path of origin's state file with suffix.
func (z *secondaryZone) stateFile(suffix string) string {
	return filepath.Join(z.m.opts.StateDir, fileName(z.cfg.Origin)+suffix)
}

// fileName maps a zone name to a safe file name: the root is "root",
// other names lose their final dot, and any byte outside [a-z0-9-_.] is
// written %XX (a zone name may hold "/" as a \DDD escape).
func fileName(origin string) string {
	if origin == "." {
		return "root"
	}
	var b strings.Builder
	for i := 0; i < len(origin)-1; i++ {
		c := origin[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// restore serves the zone from its state file when there is a good one,
// else as unavailable until the first transfer.
func (z *secondaryZone) restore() {
	srv := z.m.opts.Server
	if z.m.opts.StateDir == "" {
		srv.Set(authority.UnavailableZone(z.cfg.Origin, dns.ExtendedErrorCodeNotReady, "secondary zone not yet transferred"))
		return
	}
	path := z.stateFile(".zone")
	nz, err := authority.LoadZoneFileWith(path, z.cfg.Origin, z.cfg.Options)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			z.m.opts.Log.Warn("secondary zone's saved copy does not load; waiting for a transfer", "zone", z.cfg.Origin, "file", path, "err", err)
		}
		srv.Set(authority.UnavailableZone(z.cfg.Origin, dns.ExtendedErrorCodeNotReady, "secondary zone not yet transferred"))
		return
	}
	soa := nz.SOA()
	last := z.readRefreshTime()
	z.data = nz
	z.status.Loaded, z.status.Serial = true, soa.Serial
	z.status.LastSuccess = last
	if !last.IsZero() {
		z.status.ExpiresAt = last.Add(seconds(soa.Expire))
	}
	if !last.IsZero() && !z.m.opts.Clock.Now().Before(z.status.ExpiresAt) {
		// Expired while we were down: keep the copy for IXFR, serve nothing.
		z.status.Expired = true
		srv.Set(authority.UnavailableZone(z.cfg.Origin, dns.ExtendedErrorCodeNotReady,
			"secondary zone expired: its saved copy is older than the SOA expire time"))
		z.m.opts.Log.Warn("secondary zone's saved copy has expired; waiting for a refresh", "zone", z.cfg.Origin, "serial", soa.Serial)
		return
	}
	srv.Set(nz)
	z.m.opts.Log.Info("secondary zone served from its saved copy", "zone", z.cfg.Origin, "serial", soa.Serial, "file", path)
}

// save writes nz as a zone file, atomically.
func (z *secondaryZone) save(nz *authority.Zone, primary netip.AddrPort, now time.Time) error {
	if z.m.opts.StateDir == "" {
		return nil
	}
	err := writeAtomic(z.stateFile(".zone"), func(w *bufio.Writer) error {
		soa := nz.SOA()
		fmt.Fprintf(w, "; secondary zone %s serial %d, transferred from %s at %s by sextant\n",
			z.cfg.Origin, soa.Serial, primary, now.UTC().Format(time.RFC3339))
		fmt.Fprintf(w, "$ORIGIN .\n%s\n", soa.String())
		for _, rr := range nz.Records() {
			if rr.Header().Rrtype == dns.TypeSOA {
				continue
			}
			if _, err := w.WriteString(rr.String()); err != nil {
				return err
			}
			if err := w.WriteByte('\n'); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return z.writeRefreshTime(now)
}

// saveRefreshTime records a successful refresh (the zone mutex is held).
func (z *secondaryZone) saveRefreshTime(now time.Time) {
	if z.m.opts.StateDir == "" || z.data == nil {
		return
	}
	if err := z.writeRefreshTime(now); err != nil {
		z.m.opts.Log.Warn("secondary zone's refresh time not saved", "zone", z.cfg.Origin, "err", err)
	}
}

func (z *secondaryZone) writeRefreshTime(now time.Time) error {
	return writeAtomic(z.stateFile(".refresh"), func(w *bufio.Writer) error {
		_, err := fmt.Fprintf(w, "%d\n", now.Unix())
		return err
	})
}

func (z *secondaryZone) readRefreshTime() time.Time {
	b, err := os.ReadFile(z.stateFile(".refresh"))
	if err != nil {
		return time.Time{}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// writeAtomic writes path through a temporary file in the same directory:
// write, fsync, rename, fsync the directory.
func writeAtomic(path string, fill func(*bufio.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	w := bufio.NewWriterSize(f, 64<<10)
	if err := fill(w); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rename to %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
