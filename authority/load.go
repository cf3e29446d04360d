package authority

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// LoadZoneFile reads, parses and checks the zone file at path. origin ""
// takes the zone's origin from the owner of its SOA record (names in such a
// file are then relative to "." unless it sets $ORIGIN). $INCLUDE is allowed (paths relative to the including
// file). Errors read "file:line: what is wrong".
func LoadZoneFile(path, origin string) (*Zone, error) {
	return loadZoneFile(path, origin, nil)
}

// LoadZoneFileWith is LoadZoneFile with build options.
func LoadZoneFileWith(path, origin string, opts ZoneOptions) (*Zone, error) {
	return loadZoneFile(path, origin, func(string) ZoneOptions { return opts })
}

// loadZoneFile is LoadZoneFile with the build options of each origin
// (nil: none), looked up once the origin is known (it may come from the SOA).
func loadZoneFile(path, origin string, opts func(origin string) ZoneOptions) (*Zone, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("open zone file: %w", err)
	}
	defer f.Close()
	return parseZone(f, origin, path, abs, opts)
}

// ParseZone parses zone file text from r and checks it; origin "" is taken
// from the SOA owner as for LoadZoneFile. filename names the
// text in errors and anchors relative $INCLUDE paths.
func ParseZone(r io.Reader, origin, filename string) (*Zone, error) {
	base := filename
	if filename != "" {
		if abs, err := filepath.Abs(filename); err == nil {
			base = abs
		}
	}
	return parseZone(r, origin, filename, base, nil)
}

// recordSource is where a parsed record came from.
type recordSource struct {
	file string
	line int
}

func parseZone(r io.Reader, origin, display, base string, opts func(origin string) ZoneOptions) (*Zone, error) {
	fromSOA := origin == ""
	if fromSOA {
		origin = "."
	}
	if display == "" {
		display = "zone"
	}
	main := newLineReader(r, display)
	files := &includeFS{base: base, display: display, current: main}
	main.owner = files

	zp := dns.NewZoneParser(main, origin, base)
	zp.SetIncludeAllowed(true)
	zp.SetIncludeFS(files)

	var rrs []dns.RR
	var srcs []recordSource
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		lr := files.current
		rrs = append(rrs, rr)
		srcs = append(srcs, recordSource{file: lr.name, line: lr.entryLine()})
	}
	if err := zp.Err(); err != nil {
		// The parser's own message already says "file: dns: what: token at
		// line: L:C"; show the file as the caller named it.
		msg := err.Error()
		if base != "" && base != display {
			msg = strings.Replace(msg, base, display, 1)
		}
		return nil, fmt.Errorf("%s", msg)
	}
	if fromSOA {
		origin = soaOwner(rrs, origin)
	}
	var zo ZoneOptions
	if opts != nil {
		zo = opts(dnsname.Canonical(dns.Fqdn(origin)))
	}
	z, berr := buildZone(origin, rrs, zo)
	if berr != nil {
		if berr.index >= 0 && berr.index < len(rrs) {
			src := srcs[berr.index]
			return nil, fmt.Errorf("%s:%d: %s", src.file, src.line, berr.msg)
		}
		return nil, fmt.Errorf("%s: %s", display, berr.msg)
	}
	return z, nil
}

// soaOwner is the owner of the first SOA record in rrs, or def if none.
func soaOwner(rrs []dns.RR, def string) string {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeSOA {
			return rr.Header().Name
		}
	}
	return def
}

// includeFS opens $INCLUDE files for the zone parser, wrapping each in a
// lineReader so that records from it get their own file:line. The parser
// hands it slash paths with the leading "/" of absolute paths removed.
type includeFS struct {
	base    string // absolute path of the main file ("" if it has none)
	display string
	current *lineReader // the reader that delivered the most recent byte
}

func (f *includeFS) Open(name string) (fs.File, error) {
	p := filepath.FromSlash(name)
	if filepath.IsAbs(f.base) && !filepath.IsAbs(p) {
		p = string(filepath.Separator) + p
	}
	file, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	lr := newLineReader(file, p)
	lr.owner = f
	return &includedFile{File: file, lineReader: lr}, nil
}

type includedFile struct {
	*os.File
	*lineReader
}

func (f *includedFile) Read(b []byte) (int, error) { return f.lineReader.Read(b) }

// lineReader is the io.ByteReader the zone parser reads through. It finds
// the line each zone file entry starts on: the parser exposes no line per
// record, so the reader follows the syntax that matters for that (comments,
// quotes, escapes, parentheses) and records where the last completed entry
// began. When the parser returns a record it has just read that record's
// final newline, so the last completed entry is the record.
type lineReader struct {
	br    *bufio.Reader
	name  string
	owner *includeFS

	line               int  // current line (1-based)
	inComment, inQuote bool // lexer state
	escaped            bool
	depth              int // parentheses
	entryStart         int // line of the first token of the entry being read (0: none yet)
	lastEntry          int // start line of the last completed entry
}

func newLineReader(r io.Reader, name string) *lineReader {
	return &lineReader{br: bufio.NewReader(r), name: name, line: 1}
}

func (l *lineReader) entryLine() int {
	if l.lastEntry == 0 {
		if l.entryStart != 0 {
			return l.entryStart
		}
		return l.line
	}
	return l.lastEntry
}

func (l *lineReader) ReadByte() (byte, error) {
	c, err := l.br.ReadByte()
	if err != nil {
		if err == io.EOF && l.entryStart != 0 {
			// The file ends without a newline: the open entry is complete.
			l.lastEntry, l.entryStart = l.entryStart, 0
			if l.owner != nil {
				l.owner.current = l
			}
		}
		return c, err
	}
	if l.owner != nil {
		l.owner.current = l
	}
	l.track(c)
	return c, nil
}

// Read serves callers that do not use ReadByte (none in the parser today).
func (l *lineReader) Read(b []byte) (int, error) {
	for i := range b {
		c, err := l.ReadByte()
		if err != nil {
			return i, err
		}
		b[i] = c
	}
	return len(b), nil
}

func (l *lineReader) track(c byte) {
	switch {
	case c == '\n':
		l.inComment = false
		l.escaped = false
		if l.depth == 0 && !l.inQuote && l.entryStart != 0 {
			l.lastEntry, l.entryStart = l.entryStart, 0
		}
		l.line++
		return
	case l.inComment:
		return
	case l.escaped:
		l.escaped = false
	case c == '\\':
		l.escaped = true
	case c == '"':
		l.inQuote = !l.inQuote
	case l.inQuote:
	case c == ';':
		l.inComment = true
		return
	case c == '(':
		l.depth++
	case c == ')':
		if l.depth > 0 {
			l.depth--
		}
	case c == ' ' || c == '\t' || c == '\r':
		return
	}
	if l.entryStart == 0 {
		l.entryStart = l.line
	}
}
