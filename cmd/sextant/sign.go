package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/authority/secondary"
	"github.com/sextant-dns/sextant/authority/signer"
)

// signOptions are the flags of online signing (README "DNSSEC signing").
type signOptions struct {
	sign   stringList
	keyDir string
}

func (o *signOptions) register(fs *flag.FlagSet) {
	fs.Var(&o.sign, "sign", "sign a served zone online, `POLICY`: \"zone=NAME [alg=13|8|14|15|16] [keys=ksk+zsk|csk] [denial=nsec|nsec3] [optout=no|yes] [validity=14d] [refresh=5d] [serial=increment|keep]\" (repeatable)")
	fs.StringVar(&o.keyDir, "key-dir", "", "`DIR` of the signing keys, one sub-directory per zone (default: --state-dir/keys)")
}

// keyDirectory is --key-dir or its default under the state directory.
func (o *signOptions) keyDirectory(stateDir string) string {
	if o.keyDir != "" {
		return o.keyDir
	}
	return filepath.Join(stateDir, "keys")
}

// startSigners checks the --sign policies (each zone must be served here,
// from a --zone file or as a --secondary), loads or makes their keys,
// signs the file zones at once and installs a signer for each zone in srv
// so that every later version is signed before it is served. Secondary
// zones are signed when their first version is published, so this must
// run before the secondaries start. Every problem is an error here.
func startSigners(ctx context.Context, o *signOptions, stateDir string, srv *authority.Server,
	secondaries []*secondary.Zone, clockFile string, log *slog.Logger) error {
	if len(o.sign) == 0 {
		if o.keyDir != "" {
			return fmt.Errorf("--key-dir without any --sign zone")
		}
		return nil
	}
	clk, err := dnsClock(clockFile)
	if err != nil {
		return err
	}
	keyDir := o.keyDirectory(stateDir)
	seen := make(map[string]bool)
	var signers []*signer.Signer
	for _, spec := range o.sign {
		p, err := signer.ParsePolicy(spec)
		if err != nil {
			return fmt.Errorf("--sign %q: %w", spec, err)
		}
		if seen[p.Zone] {
			return fmt.Errorf("--sign: zone %s given twice", p.Zone)
		}
		seen[p.Zone] = true
		served := srv != nil && srv.Zone(p.Zone) != nil
		for _, z := range secondaries {
			served = served || z.Origin == p.Zone
		}
		if !served {
			return fmt.Errorf("--sign: zone %s is not served here (no --zone file or --secondary holds it)", p.Zone)
		}
		s, err := signer.New(p, signer.Options{KeyDir: keyDir, Clock: clk, Log: log})
		if err != nil {
			return fmt.Errorf("--sign %s: %w", p.Zone, err)
		}
		signers = append(signers, s)
	}
	for _, s := range signers {
		srv.SetPublishHook(s.Zone(), s.Publish)
		if msg := s.Err(); msg != "" {
			return fmt.Errorf("--sign %s: %s", s.Zone(), msg)
		}
		for _, ds := range s.DS() {
			log.Info("zone signed online; the parent needs this DS", "zone", s.Zone(), "ds", ds.String())
		}
		go s.Run(ctx, srv)
	}
	return nil
}
