package roothints

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// LineError is an error in a hints or anchors file, located by file and line.
type LineError struct {
	File string
	Line int
	Msg  string
	Err  error // the underlying parse error, if any
}

// Error reads "file:line: what is wrong".
func (e *LineError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Unwrap returns the zone parser's error, if any.
func (e *LineError) Unwrap() error { return e.Err }

// lineCounter hands the zone parser one byte at a time (it uses
// io.ByteReader when offered), so that after each record we know how many
// lines it has read: the line the record ends on.
type lineCounter struct {
	r       *bufio.Reader
	lines   int  // newlines read so far
	lastNL  bool // the last byte read was a newline
	started bool
}

func (l *lineCounter) ReadByte() (byte, error) {
	b, err := l.r.ReadByte()
	if err == nil {
		l.started = true
		l.lastNL = b == '\n'
		if l.lastNL {
			l.lines++
		}
	}
	return b, err
}

func (l *lineCounter) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b, err := l.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = b
	return 1, nil
}

// line is the line the parser is on: the one the last record ended on.
func (l *lineCounter) line() int {
	if l.lastNL || !l.started {
		return l.lines
	}
	return l.lines + 1
}

// parsedRR is one record with the line it ends on.
type parsedRR struct {
	rr   dns.RR
	line int
}

// parseLineRE picks the position out of miekg/dns's ParseError text.
var parseLineRE = regexp.MustCompile(`^(?:.*?: )?dns: (.*) at line: (\d+):\d+$`)

// readZone parses r in zone-file syntax with origin "." (TTL and class
// optional, a missing TTL taking defaultTTL; $ORIGIN and $TTL honoured,
// $INCLUDE refused), and returns every record with its line. Errors name
// name:line.
func readZone(r io.Reader, name string, defaultTTL uint32) ([]parsedRR, error) {
	lc := &lineCounter{r: bufio.NewReader(r)}
	zp := dns.NewZoneParser(lc, ".", "")
	zp.SetDefaultTTL(defaultTTL)
	var out []parsedRR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out = append(out, parsedRR{rr: rr, line: lc.line()})
	}
	if err := zp.Err(); err != nil {
		return nil, zoneError(name, lc.line(), err)
	}
	return out, nil
}

// zoneError turns a zone parser error into a LineError with the parser's own
// line when it gives one.
func zoneError(name string, line int, err error) error {
	var pe *dns.ParseError
	if !errors.As(err, &pe) {
		return &LineError{File: name, Line: line, Msg: err.Error(), Err: err}
	}
	msg := pe.Error()
	if m := parseLineRE.FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[2]); convErr == nil {
			line, msg = n, m[1]
		}
	}
	return &LineError{File: name, Line: line, Msg: strings.TrimSpace(msg), Err: err}
}
