package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// opsOptions are the serve flags of how it reports: the log's format and
// the per-query log (querylog.go).
type opsOptions struct {
	logFormat      string
	queryLog       bool
	queryLogSample int
	dnstapFile     string
	dnstapIdentity string
}

// Log formats of --log-format.
const (
	logFormatText = "text"
	logFormatJSON = "json"
)

func (o *opsOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.logFormat, "log-format", logFormatText, "`FORMAT` of the log on stderr: text (logfmt) or json (one object per line)")
	fs.BoolVar(&o.queryLog, "query-log", false, "log every client query answered (client, transport, question, rcode, EDE, duration, cache hit, upstream queries); `sextant ctl querylog` turns it on and off at run time")
	fs.IntVar(&o.queryLogSample, "query-log-sample", 1, "log one query in `N` (with --query-log)")
	fs.StringVar(&o.dnstapFile, "dnstap-file", "", "write every client query and response to `FILE` as dnstap (Frame Streams; read with dnstap-read); replaced at start")
	fs.StringVar(&o.dnstapIdentity, "dnstap-identity", "", "`NAME` of this server in dnstap messages (default: the host name)")
}

// validate checks the flags.
func (o *opsOptions) validate() error {
	var errs []error
	if o.logFormat != logFormatText && o.logFormat != logFormatJSON {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", o.logFormat))
	}
	if o.queryLogSample < 1 {
		errs = append(errs, fmt.Errorf("--query-log-sample must be at least 1, got %d", o.queryLogSample))
	}
	return errors.Join(errs...)
}

// parseLevel reads --log-level.
func parseLevel(level string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return l, nil
}

// newServeLogger is serve's logger: its level in a LevelVar, which a reload
// changes (reload.go), in the --log-format format. queryLog writes in the
// same format at a fixed level, since per-query lines are asked for on
// their own (--query-log) and must not vanish with --log-level warn.
func newServeLogger(level, format string, w io.Writer) (log *slog.Logger, lv *slog.LevelVar, queryLog *slog.Logger, err error) {
	l, err := parseLevel(level)
	if err != nil {
		return nil, nil, nil, err
	}
	lv = new(slog.LevelVar)
	lv.Set(l)
	return slog.New(logHandler(format, w, lv)), lv, slog.New(logHandler(format, w, slog.LevelInfo)), nil
}

func logHandler(format string, w io.Writer, level slog.Leveler) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	if format == logFormatJSON {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}
