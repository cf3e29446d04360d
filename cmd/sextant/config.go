package main

// The configuration file of `sextant serve --config FILE`.
//
// Its keys are not a second schema: they are the serve flags themselves,
// read from the flag set. Every flag NAME is the key NAME; a table groups
// keys by the first words of their names ([cache] size = 1 is cache-size,
// as is the dotted key cache.size = 1). A value is applied with
// flag.FlagSet.Set, exactly as if it had been given on the command line,
// unless the flag was given on the command line (which wins). So a flag
// added to serve is configurable in the file without any code here, and
// the flag's own checks judge the file's values.
//
// The file is strict: an unknown key, a value of the wrong TOML type, a
// key set twice and a value the flag rejects are each an error naming
// FILE:LINE and the key, and serve does not start.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// configFlag is the serve flag naming the file; it is not a key of the file.
const configFlag = "config"

// maxConfigBytes bounds the file read: a configuration is a few KiB, and a
// path pointing at something huge (a log, a device) must fail, not fill memory.
const maxConfigBytes = 1 << 20

// keySeparator joins a table's name and a key into a flag name.
const keySeparator = "-"

// configOptions are what serve keeps of its configuration: the flag set
// (to print the effective configuration and compare it on SIGHUP), the
// command line (re-parsed with the file on SIGHUP), and where each value
// set by the file came from.
type configOptions struct {
	configFile string
	flags      *flag.FlagSet
	args       []string
	// onCommandLine are the flags given on the command line; fromFile
	// maps a flag name set by the file to "FILE:LINE".
	onCommandLine map[string]bool
	fromFile      map[string]string
}

// registerConfigFlag adds --config.
func (c *configOptions) registerConfigFlag(fs *flag.FlagSet) {
	fs.StringVar(&c.configFile, configFlag, "", "configuration `FILE` (TOML): every flag is a key of the same name; "+
		"flags on the command line override it (see cmd/sextant/sextant.toml.example)")
}

// applyConfig reads the --config file, if any, into the flags that were
// not given on the command line.
func (c *configOptions) applyConfig(fs *flag.FlagSet, args []string) error {
	c.flags, c.args = fs, args
	c.onCommandLine = make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { c.onCommandLine[f.Name] = true })
	if c.configFile == "" {
		return nil
	}
	from, err := applyConfigFile(fs, c.configFile)
	c.fromFile = from
	return err
}

// configError is a mistake in the file, at a line and a key.
type configError struct {
	file string
	line int
	key  string
	msg  string
}

func (e *configError) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", e.file, e.line, e.key, e.msg)
}

// configEntry is one flag set by the file.
type configEntry struct {
	name  string // the flag's name
	key   string // as written, e.g. cache.size
	line  int
	value any
}

// applyConfigFile sets, from the TOML file at path, every flag of fs that
// was not given on the command line; it returns where each came from. All
// mistakes are reported together, in the order of the file.
func applyConfigFile(fs *flag.FlagSet, path string) (map[string]string, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	entries, err := configEntries(path, data)
	if err != nil {
		return nil, err
	}
	onCommandLine := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	from := make(map[string]string)
	var errs []error
	for _, e := range entries {
		f := fs.Lookup(e.name)
		if sub, ok := e.value.(map[string]any); ok && len(sub) == 0 && f == nil && isFlagGroup(fs, e.name) {
			continue // an empty [cache] table
		}
		if f == nil || e.name == configFlag {
			errs = append(errs, &configError{path, e.line, e.key, unknownKey(fs, e.name)})
			continue
		}
		values, err := flagStrings(f, e.value)
		if err != nil {
			errs = append(errs, &configError{path, e.line, e.key, err.Error()})
			continue
		}
		if onCommandLine[e.name] {
			continue // the command line wins
		}
		if err := setFlag(fs, f, values); err != nil {
			errs = append(errs, &configError{path, e.line, e.key, err.Error()})
			continue
		}
		from[e.name] = fmt.Sprintf("%s:%d", path, e.line)
	}
	return from, errors.Join(errs...)
}

// maxSuggestDistance is how many edits away a misspelt key may be for the
// error to suggest the flag: two catches a typo or a swapped pair.
const maxSuggestDistance = 2

// unknownKey says a key is unknown, suggesting the nearest flag name.
func unknownKey(fs *flag.FlagSet, name string) string {
	best, bestDist := "", maxSuggestDistance+1
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(name, f.Name); f.Name != configFlag && d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	if best != "" && name != configFlag {
		return "unknown key (did you mean " + best + "?)"
	}
	return "unknown key (the keys are the flags of `sextant serve -h`, without the dashes)"
}

// editDistance is the Levenshtein distance of a and b (short keys only).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// isFlagGroup reports whether prefix is the first words of a flag's name,
// as a table name is.
func isFlagGroup(fs *flag.FlagSet, prefix string) bool {
	found := false
	fs.VisitAll(func(f *flag.Flag) {
		found = found || strings.HasPrefix(f.Name, prefix+keySeparator)
	})
	return found
}

func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("--config %s: larger than %d bytes", path, maxConfigBytes)
	}
	return data, nil
}

// configEntries decodes the file into flag names and values, sorted by
// line. The TOML decoder checks the syntax and rejects keys defined twice;
// the parser's syntax tree gives each key its line.
func configEntries(path string, data []byte) ([]configEntry, error) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, _ := de.Position()
			return nil, &configError{path, line, strings.Join(de.Key(), "."), strings.TrimPrefix(de.Error(), "toml: ")}
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	lines := keyLines(data)
	var entries []configEntry
	var flatten func(prefix []string, m map[string]any)
	flatten = func(prefix []string, m map[string]any) {
		for k, v := range m {
			keyPath := append(append([]string(nil), prefix...), k)
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				flatten(keyPath, sub)
				continue
			}
			// An empty table stays an entry: "[cache]" alone is harmless
			// but "[bogus]" is an unknown key, and "listen = {}" a wrong type.
			entries = append(entries, configEntry{
				name:  strings.Join(keyPath, keySeparator),
				key:   strings.Join(keyPath, "."),
				line:  lines[strings.Join(keyPath, "\x00")],
				value: v,
			})
		}
	}
	flatten(nil, doc)
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].line != entries[j].line {
			return entries[i].line < entries[j].line
		}
		return entries[i].name < entries[j].name
	})
	// [cache] size and cache-size name the same flag: the second is a
	// key set twice, as TOML itself says of cache-size given twice.
	first := make(map[string]configEntry)
	for _, e := range entries {
		if f, ok := first[e.name]; ok {
			return nil, &configError{path, e.line, e.key, fmt.Sprintf("sets %s again (already set as %s at line %d)", e.name, f.key, f.line)}
		}
		first[e.name] = e
	}
	return entries, nil
}

// keyLines maps each key path of a valid TOML document (parts joined by
// NUL) to the line it is written on.
func keyLines(data []byte) map[string]int {
	lines := make(map[string]int)
	p := unstable.Parser{}
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			var line int
			table, line = nodeKey(&p, e)
			if k := strings.Join(table, "\x00"); lines[k] == 0 {
				lines[k] = line
			}
		case unstable.KeyValue:
			key, line := nodeKey(&p, e)
			recordKeyLines(&p, lines, append(append([]string(nil), table...), key...), line, e.Value())
		}
	}
	return lines
}

// recordKeyLines records key at line, and the keys of an inline table
// value at their own lines.
func recordKeyLines(p *unstable.Parser, lines map[string]int, key []string, line int, v *unstable.Node) {
	lines[strings.Join(key, "\x00")] = line
	if v == nil || v.Kind != unstable.InlineTable {
		return
	}
	it := v.Children()
	for it.Next() {
		kv := it.Node()
		sub, subLine := nodeKey(p, kv)
		recordKeyLines(p, lines, append(append([]string(nil), key...), sub...), subLine, kv.Value())
	}
}

// nodeKey is the (dotted) key of an expression and its line.
func nodeKey(p *unstable.Parser, n *unstable.Node) (key []string, line int) {
	it := n.Key()
	for it.Next() {
		k := it.Node()
		key = append(key, string(k.Data))
		line = p.Shape(k.Raw).Start.Line
	}
	return key, line
}

// flagKind is the TOML type a flag takes.
type flagKind int

const (
	kindString flagKind = iota // and any Value that is neither a Getter nor a list
	kindBool
	kindInt
	kindUint
	kindFloat
	kindDuration
	kindList // a repeatable flag: an array of strings
)

// kindOf tells a flag's TOML type from its Value: a slice is a repeatable
// flag (stringList, prefixList, ...), the flag package's own types say
// theirs through flag.Getter, anything else takes a string.
func kindOf(f *flag.Flag) flagKind {
	if v := reflect.ValueOf(f.Value); v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Slice {
		return kindList
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return kindBool
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return kindString
	}
	switch g.Get().(type) {
	case int, int64:
		return kindInt
	case uint, uint64:
		return kindUint
	case float64:
		return kindFloat
	case time.Duration:
		return kindDuration
	}
	return kindString
}

// flagStrings turns a TOML value into the command-line strings of f, or
// says which TOML type f wants.
func flagStrings(f *flag.Flag, v any) ([]string, error) {
	kind := kindOf(f)
	wrong := func(want string) error {
		return fmt.Errorf("wrong type: want %s, got %s", want, tomlType(v))
	}
	switch kind {
	case kindBool:
		if b, ok := v.(bool); ok {
			return []string{strconv.FormatBool(b)}, nil
		}
		return nil, wrong("a boolean (true or false)")
	case kindInt, kindUint:
		if n, ok := v.(int64); ok {
			return []string{strconv.FormatInt(n, 10)}, nil
		}
		return nil, wrong("an integer")
	case kindFloat:
		switch n := v.(type) {
		case int64:
			return []string{strconv.FormatInt(n, 10)}, nil
		case float64:
			return []string{strconv.FormatFloat(n, 'g', -1, 64)}, nil
		}
		return nil, wrong("a number")
	case kindDuration:
		if s, ok := v.(string); ok {
			return []string{s}, nil
		}
		return nil, wrong(`a duration string such as "5s"`)
	case kindList:
		arr, ok := v.([]any)
		if !ok {
			return nil, wrong("an array of strings")
		}
		out := make([]string, len(arr))
		for i, el := range arr {
			s, ok := el.(string)
			if !ok {
				return nil, fmt.Errorf("wrong type: want an array of strings, element %d is %s", i+1, tomlType(el))
			}
			out[i] = s
		}
		return out, nil
	}
	if s, ok := v.(string); ok {
		return []string{s}, nil
	}
	return nil, wrong("a string")
}

// tomlType names the TOML type of a decoded value for error messages.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case []any:
		return "an array"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	case time.Time, toml.LocalDate, toml.LocalTime, toml.LocalDateTime:
		return "a date or time"
	}
	return fmt.Sprintf("%T", v)
}

// setFlag applies values to f. A list from the file replaces the flag's
// default list instead of adding to it.
func setFlag(fs *flag.FlagSet, f *flag.Flag, values []string) error {
	if kindOf(f) == kindList {
		reflect.ValueOf(f.Value).Elem().SetLen(0)
	}
	for _, s := range values {
		if err := fs.Set(f.Name, s); err != nil {
			return fmt.Errorf("invalid value %q: %w", s, unwrapFlagError(err))
		}
	}
	return nil
}

// unwrapFlagError drops the flag package's "parse error" wording around
// the Value's own error.
func unwrapFlagError(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

// secretFlags are printed redacted: check-config's output ends up in
// tickets and chat.
var secretFlags = map[string]bool{"tsig-key": true}

// writeEffectiveConfig prints every flag's effective value as TOML, each
// with where it came from: the default, the file (FILE:LINE) or the
// command line. The output is itself a valid configuration file.
func (c *configOptions) writeEffectiveConfig(w io.Writer) {
	c.flags.VisitAll(func(f *flag.Flag) {
		if f.Name == configFlag {
			return
		}
		source := "default"
		switch {
		case c.onCommandLine[f.Name]:
			source = "command line"
		case c.fromFile[f.Name] != "":
			source = c.fromFile[f.Name]
		}
		fmt.Fprintf(w, "%s = %s  # %s\n", f.Name, tomlValue(f), source)
	})
}

// tomlValue is the flag's current value in TOML.
func tomlValue(f *flag.Flag) string {
	redact := func(s string) string {
		if secretFlags[f.Name] {
			if i := strings.LastIndexByte(s, ':'); i >= 0 {
				return s[:i+1] + "REDACTED"
			}
			return "REDACTED"
		}
		return s
	}
	switch kindOf(f) {
	case kindBool, kindInt, kindUint, kindFloat:
		return f.Value.String()
	case kindList:
		v := reflect.ValueOf(f.Value).Elem()
		items := make([]string, v.Len())
		for i := range items {
			items[i] = tomlString(redact(fmt.Sprint(v.Index(i).Interface())))
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	return tomlString(redact(f.Value.String()))
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// configWorldReadable reports whether the config file may be read by other
// users (it may hold TSIG secrets).
func configWorldReadable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().Perm()&0o044 != 0
}
