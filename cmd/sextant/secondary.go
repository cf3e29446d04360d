package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/authority/secondary"
	"github.com/sextant-dns/sextant/authority/xfrout"
	"github.com/sextant-dns/sextant/clock"
)

// secondaryOptions are the flags of secondary zones (zones transferred in
// from primaries elsewhere; README "Secondary DNS").
type secondaryOptions struct {
	secondaries  stringList
	tsigKeys     stringList
	tsigKeyFiles stringList
	notifyListen stringList
	stateDir     string
	maxRecords   int
	maxBytes     int
	xfrOut       stringList
	xfrListen    stringList
}

// defaultStateDir is systemd's StateDirectory=sextant.
const defaultStateDir = "/var/lib/sextant"

func (o *secondaryOptions) register(fs *flag.FlagSet) {
	fs.Var(&o.secondaries, "secondary", "secondary `ZONE-SPEC`: \"zone=NAME primary=ADDR[:PORT][,...] [key=KEYNAME] [source=ADDR] [allow-notify=CIDR,...]\" (repeatable)")
	fs.Var(&o.tsigKeys, "tsig-key", "TSIG key `ALG:NAME:SECRET` (hmac-sha256 or hmac-sha512, base64 secret) for --secondary key= (repeatable; prefer --tsig-key-file)")
	fs.Var(&o.tsigKeyFiles, "tsig-key-file", "`FILE` of TSIG keys, one ALG:NAME:SECRET a line, # comments (repeatable)")
	fs.Var(&o.notifyListen, "notify-listen", "`ADDR:PORT` where primaries send NOTIFY for --secondary zones, UDP and TCP (repeatable)")
	fs.StringVar(&o.stateDir, "state-dir", defaultStateDir, "`DIR` keeping transferred secondary zones (DIR/secondary/NAME.zone), served from there after a restart")
	fs.IntVar(&o.maxRecords, "xfr-max-records", secondary.DefaultLimits.MaxRecords, "largest zone transfer taken, in `RECORDS`")
	fs.IntVar(&o.maxBytes, "xfr-max-bytes", secondary.DefaultLimits.MaxBytes, "largest zone transfer taken, in message `BYTES`")
	fs.Var(&o.xfrOut, "xfr-out", "zone served here that others may transfer, `SPEC`: \"zone=NAME allow=CIDR,... [key=KEYNAME] [notify=ADDR[:PORT],...] [source=ADDR]\" (repeatable)")
	fs.Var(&o.xfrListen, "xfr-listen", "`ADDR:PORT` answering zone transfers of --xfr-out zones, TCP and UDP (repeatable)")
}

// parseKeys reads --tsig-key and --tsig-key-file.
func (o *secondaryOptions) parseKeys() (map[string]*secondary.Key, error) {
	keys := make(map[string]*secondary.Key)
	addKey := func(where, spec string) error {
		k, err := secondary.ParseKey(spec)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if old := keys[k.Name]; old != nil && *old != *k {
			return fmt.Errorf("%s: TSIG key %s defined twice with different values", where, k.Name)
		}
		keys[k.Name] = k
		return nil
	}
	for _, spec := range o.tsigKeys {
		if err := addKey("--tsig-key", spec); err != nil {
			return nil, err
		}
	}
	for _, path := range o.tsigKeyFiles {
		if err := readKeyFile(path, addKey); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// parseSecondaries checks the secondary-zone flags; every mistake is an
// error naming the flag and the reason, before anything starts.
func (o *secondaryOptions) parseSecondaries(fileZones *authority.Server, keys map[string]*secondary.Key) ([]*secondary.Zone, error) {
	if len(o.secondaries) == 0 {
		if len(o.notifyListen) > 0 {
			return nil, fmt.Errorf("--notify-listen without any --secondary zone")
		}
		return nil, nil
	}
	if o.maxRecords <= 0 || o.maxBytes <= 0 {
		return nil, fmt.Errorf("--xfr-max-records and --xfr-max-bytes must be positive")
	}
	var zones []*secondary.Zone
	seen := make(map[string]bool)
	for _, spec := range o.secondaries {
		z, err := secondary.ParseZone(spec, keys)
		if err != nil {
			return nil, fmt.Errorf("--secondary %q: %w", spec, err)
		}
		if seen[z.Origin] {
			return nil, fmt.Errorf("--secondary: zone %s declared twice", z.Origin)
		}
		if fileZones != nil && fileZones.Zone(z.Origin) != nil {
			return nil, fmt.Errorf("--secondary: zone %s is also served from a --zone file", z.Origin)
		}
		seen[z.Origin] = true
		zones = append(zones, z)
	}
	return zones, nil
}

// parseXfrOut checks --xfr-out and --xfr-listen: each zone must be served
// here, from a --zone file or as a --secondary.
func (o *secondaryOptions) parseXfrOut(fileZones *authority.Server, secondaries []*secondary.Zone, keys map[string]*secondary.Key) ([]*xfrout.Zone, error) {
	if len(o.xfrOut) == 0 {
		if len(o.xfrListen) > 0 {
			return nil, fmt.Errorf("--xfr-listen without any --xfr-out zone")
		}
		return nil, nil
	}
	if len(o.xfrListen) == 0 {
		return nil, fmt.Errorf("--xfr-out without --xfr-listen: say where secondaries transfer from")
	}
	var zones []*xfrout.Zone
	for _, spec := range o.xfrOut {
		z, err := xfrout.ParseZone(spec, keys)
		if err != nil {
			return nil, fmt.Errorf("--xfr-out %q: %w", spec, err)
		}
		served := fileZones != nil && fileZones.Zone(z.Origin) != nil
		for _, sz := range secondaries {
			served = served || sz.Origin == z.Origin
		}
		if !served {
			return nil, fmt.Errorf("--xfr-out: zone %s is not served here (no --zone file or --secondary holds it)", z.Origin)
		}
		zones = append(zones, z)
	}
	return zones, nil
}

// readKeyFile adds the keys in a --tsig-key-file, naming file:line in errors.
func readKeyFile(path string, add func(where, spec string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--tsig-key-file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if err := add(fmt.Sprintf("--tsig-key-file %s:%d", path, line), text); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("--tsig-key-file %s: %w", path, err)
	}
	return nil
}

// startSecondaries serves the secondary zones in srv and keeps them
// current until ctx ends; it returns the manager (which also answers
// NOTIFYs arriving on --listen, notify.go) and a function that closes the
// NOTIFY listeners and stops the refresh loops.
func startSecondaries(ctx context.Context, o *secondaryOptions, zones []*secondary.Zone, srv *authority.Server,
	clk clock.Clock, log *slog.Logger, onNewVersion func(origin string)) (*secondary.Manager, func(), error) {
	m, err := secondary.New(zones, secondary.Options{
		Server:       srv,
		Clock:        clk,
		Log:          log,
		StateDir:     filepath.Join(o.stateDir, "secondary"),
		Limits:       secondary.Limits{MaxRecords: o.maxRecords, MaxBytes: o.maxBytes},
		OnNewVersion: onNewVersion,
	})
	if err != nil {
		return nil, nil, err
	}
	var listeners []*secondary.NotifyListener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	for _, addr := range o.notifyListen {
		l, err := m.ListenNotify(addr)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("--notify-listen %s: %w", addr, err)
		}
		listeners = append(listeners, l)
	}
	// The refresh loops end with serve, or when serve returns early (a
	// front end that does not start): close cancels them either way and
	// waits, so nothing writes the state directory afterwards.
	ctx, cancel := context.WithCancel(ctx)
	m.Start(ctx)
	return m, func() {
		closeAll()
		cancel()
		m.Wait()
	}, nil
}

// startXfrOut opens the transfer listeners; it returns the server (whose
// Check sends NOTIFYs for changed zones) and a function closing them.
func startXfrOut(o *secondaryOptions, zones []*xfrout.Zone, srv *authority.Server, log *slog.Logger) (*xfrout.Server, func(), error) {
	out, err := xfrout.New(zones, xfrout.Options{Zones: srv, Log: log})
	if err != nil {
		return nil, nil, err
	}
	var listeners []*xfrout.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
		out.Wait()
	}
	for _, addr := range o.xfrListen {
		l, err := out.Listen(addr)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("--xfr-listen %s: %w", addr, err)
		}
		listeners = append(listeners, l)
	}
	return out, closeAll, nil
}
