package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/validator"
)

// registerValidationFlags adds the DNSSEC flags that live here.
func registerValidationFlags(fs *flag.FlagSet, o *resolverOptions) {
	fs.StringVar(&o.anchorState, "trust-anchor-state", "", "`FILE` keeping the trust anchors up to date by RFC 5011 "+
		"(made from the configured anchors when missing, then rewritten after each refresh that changes it)")
}

// configureValidation decides whether DNSSEC validation runs and with which
// trust anchors. The built-in anchors belong to the IANA root: with custom
// root hints and neither --trust-anchor nor --trust-anchor-state,
// validation is off (said once, here). --trust-anchor-state keeps the
// anchors by RFC 5011 in a file, started from the other anchors.
func configureValidation(cfg *resolver.Config, o *resolverOptions, customHints bool, log *slog.Logger) error {
	if o.noDNSSEC {
		log.Info("DNSSEC validation is off (--no-dnssec)")
		return nil
	}
	var anchors *roothints.Anchors
	switch {
	case len(o.trustAnchors) > 0:
		a, err := roothints.LoadAnchors(o.trustAnchors...)
		if err != nil {
			return fmt.Errorf("--trust-anchor: %w", err)
		}
		anchors = a
	case customHints && o.anchorState != "":
		anchors = &roothints.Anchors{} // the state file holds them
	case customHints:
		log.Warn("DNSSEC validation is off: --root-hints was given without --trust-anchor, " +
			"and the built-in anchors belong to the IANA root")
		return nil
	default:
		anchors = roothints.DefaultAnchors()
	}
	var managed *managedAnchors
	if o.anchorState != "" {
		m, err := loadManagedAnchors(o.anchorState, anchors, cfg.Clock, log)
		if err != nil {
			return err
		}
		managed = m
	}
	ntas, err := enableValidator(cfg, anchors, o.negAnchors, log, managed)
	o.ntas = ntas
	return err
}

// managedAnchors are RFC 5011 anchors with the file they are kept in.
type managedAnchors struct {
	m    *validator.ManagedAnchors
	path string
}

// loadManagedAnchors reads the RFC 5011 state from path, or starts it from
// the configured anchors when the file does not exist yet (and writes it,
// so that a path that cannot be written fails now rather than later).
func loadManagedAnchors(path string, anchors *roothints.Anchors, clk clock.Clock, log *slog.Logger) (*managedAnchors, error) {
	if clk == nil {
		clk = clock.System{}
	}
	f, err := os.Open(path)
	switch {
	case err == nil:
		defer f.Close()
		m, err := validator.LoadManagedAnchors(f)
		if err != nil {
			return nil, fmt.Errorf("--trust-anchor-state: %w", err)
		}
		log.Info("RFC 5011 trust-anchor state loaded", "file", path, "zones", m.Zones())
		return &managedAnchors{m: m, path: path}, nil
	case errors.Is(err, fs.ErrNotExist):
		if len(anchors.DS)+len(anchors.DNSKEY) == 0 {
			return nil, fmt.Errorf("--trust-anchor-state %s does not exist yet and there are no anchors to start it from: give --trust-anchor", path)
		}
		m, err := validator.NewManagedAnchors(anchors.Records(), clk.Now())
		if err != nil {
			return nil, fmt.Errorf("--trust-anchor-state: %w", err)
		}
		ma := &managedAnchors{m: m, path: path}
		if err := ma.save(m); err != nil {
			return nil, fmt.Errorf("--trust-anchor-state: %w", err)
		}
		log.Info("RFC 5011 trust-anchor state started from the configured anchors", "file", path, "zones", m.Zones())
		return ma, nil
	default:
		return nil, fmt.Errorf("--trust-anchor-state: %w", err)
	}
}

// save writes the state atomically: a temporary file beside path, synced,
// then renamed over it, so that a crash never leaves half a state.
func (a *managedAnchors) save(m *validator.ManagedAnchors) error {
	tmp, err := os.CreateTemp(filepath.Dir(a.path), filepath.Base(a.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save trust-anchor state: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := m.Save(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save trust-anchor state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save trust-anchor state: %w", err)
	}
	if err := os.Rename(tmp.Name(), a.path); err != nil {
		return fmt.Errorf("save trust-anchor state: %w", err)
	}
	return nil
}
