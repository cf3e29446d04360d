package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/authority/secondary"
	"github.com/sextant-dns/sextant/authority/signer"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/security"
)

// signOptions are the flags of online signing (README "DNSSEC signing").
type signOptions struct {
	sign   stringList
	keyDir string
}

func (o *signOptions) register(fs *flag.FlagSet) {
	fs.Var(&o.sign, "sign", "sign a served zone online, `POLICY`: \"zone=NAME [alg=13|8|14|15|16] [keys=ksk+zsk|csk] [denial=nsec|nsec3] [optout=no|yes] [validity=14d] [refresh=5d] [serial=increment|keep] [zsk-lifetime=DUR] [ksk-lifetime=DUR] [csk-lifetime=DUR] [ksk-wait=DUR] [import-dnskey=FILE [import-dnskey-from=ADDR]] [unsign=yes [unsign-wait=DUR]]\" (repeatable; an alg= other than the keys' rolls them over)")
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
	secondaries []*secondary.Zone, clockFile string, res *resolver.Resolver, validating bool, log *slog.Logger) error {
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
	// Without validation the parent's DS cannot be trusted, so it is not
	// asked: rollovers and unsigning then need their configured waits.
	var ask signer.ParentDSFunc
	if validating {
		ask = parentDS(res)
	}
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
		s, err := signer.New(p, signer.Options{KeyDir: keyDir, Clock: clk, Log: log, ParentDS: ask})
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

// parentDSTimeout bounds one check of a parent's DS.
const parentDSTimeout = 10 * time.Second

// parentDS asks the co-located validating resolver for a zone's DS RRset,
// as the world sees it: the answer must be validated (secure) or provably
// unsigned above (insecure); anything else is an error, so that signing
// is never turned off on a SERVFAIL or a forged answer.
func parentDS(res *resolver.Resolver) signer.ParentDSFunc {
	if res == nil {
		return nil
	}
	return func(ctx context.Context, zone string) ([]*dns.DS, error) {
		ctx, cancel := context.WithTimeout(ctx, parentDSTimeout)
		defer cancel()
		r, err := res.Resolve(ctx, zone, dns.TypeDS)
		if err != nil {
			return nil, err
		}
		if r.Security != security.Secure && r.Security != security.Insecure {
			return nil, fmt.Errorf("DS of %s: answer is %v", zone, r.Security)
		}
		if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
			return nil, fmt.Errorf("DS of %s: %s", zone, dns.RcodeToString[r.Rcode])
		}
		var out []*dns.DS
		for _, rr := range r.Answer {
			if ds, ok := rr.(*dns.DS); ok && dnsname.Canonical(ds.Hdr.Name) == zone {
				out = append(out, ds)
			}
		}
		return out, nil
	}
}
