package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// exampleConfig is the documented example file shipped beside the unit.
const exampleConfig = "sextant.toml.example"

// writeConfig writes a config file and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sextant.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveFlags parses a serve command line, failing the test on an error.
func serveFlags(t *testing.T, args ...string) *serveOptions {
	t.Helper()
	var stderr bytes.Buffer
	o, err := parseServeFlags(args, &stderr)
	if err != nil {
		t.Fatalf("parseServeFlags(%q): %v\n%s", args, err, stderr.String())
	}
	return o
}

// effective is every flag's effective value as check-config prints it.
func effective(o *serveOptions) map[string]string {
	m := make(map[string]string)
	o.flags.VisitAll(func(f *flag.Flag) { m[f.Name] = tomlValue(f) })
	return m
}

// sampleValue is a TOML value other than the default that f accepts,
// found by trying candidates on a fresh flag set.
func sampleValue(t *testing.T, name string) string {
	t.Helper()
	f := serveFlags(t).flags.Lookup(name)
	switch kindOf(f) {
	case kindBool:
		if f.Value.String() == "true" {
			return "false"
		}
		return "true"
	case kindInt, kindUint, kindFloat:
		return "7"
	case kindDuration:
		return `"7s"`
	}
	for _, candidate := range []string{"x.example", "192.0.2.0/24", "192.0.2.1", "192.0.2.1:53"} {
		fresh := serveFlags(t)
		if fresh.flags.Set(name, candidate) == nil {
			if kindOf(f) == kindList {
				return `["` + candidate + `"]`
			}
			return `"` + candidate + `"`
		}
	}
	t.Fatalf("no sample value accepted by --%s: add one to sampleValue", name)
	return ""
}

// TestConfigEveryServeFlagIsAKey: each serve flag, set in a file with the
// TOML type of its kind, reaches the flag, and is printed back as written.
func TestConfigEveryServeFlagIsAKey(t *testing.T) {
	n := 0
	serveFlags(t).flags.VisitAll(func(f *flag.Flag) {
		if f.Name == configFlag {
			return
		}
		n++
		value := sampleValue(t, f.Name)
		path := writeConfig(t, f.Name+" = "+value+"\n")
		o := serveFlags(t, "--config", path)
		got := tomlValue(o.flags.Lookup(f.Name))
		if secretFlags[f.Name] {
			// Set, but never printed.
			if o.flags.Lookup(f.Name).Value.String() != strings.Trim(value, `[]"`) || strings.Contains(got, "x.example") {
				t.Errorf("secret %s = %s in the file: flag is %s, printed %s", f.Name, value, o.flags.Lookup(f.Name).Value, got)
			}
		} else if got != value {
			t.Errorf("%s = %s in the file: flag is %s", f.Name, value, got)
		}
		if o.fromFile[f.Name] != path+":1" {
			t.Errorf("%s: source %q, want %s:1", f.Name, o.fromFile[f.Name], path)
		}
	})
	if n < 30 {
		t.Fatalf("only %d serve flags seen", n)
	}
}

// TestConfigExampleDocumentsEveryKey: the example file names every serve
// flag, each under a comment, so a flag added without documenting it
// fails here.
func TestConfigExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := configEntries(exampleConfig, data)
	if err != nil {
		t.Fatal(err)
	}
	inFile := make(map[string]int)
	for _, e := range entries {
		inFile[e.name] = e.line
	}
	lines := strings.Split(string(data), "\n")
	keyLine := regexp.MustCompile(`^[A-Za-z0-9_.-]+\s*=`)
	serveFlags(t).flags.VisitAll(func(f *flag.Flag) {
		if f.Name == configFlag {
			return
		}
		line, ok := inFile[f.Name]
		if !ok {
			t.Errorf("%s: flag --%s is not in the example file", exampleConfig, f.Name)
			return
		}
		// Above the key: more keys of the same paragraph, then a comment.
		i := line - 2
		for i >= 0 && keyLine.MatchString(lines[i]) {
			i--
		}
		if i < 0 || !strings.HasPrefix(strings.TrimSpace(lines[i]), "#") {
			t.Errorf("%s:%d: %s has no comment above it", exampleConfig, line, f.Name)
		}
	})
}

// TestConfigExampleIsTheDefaults: the example file, every key set to its
// documented default, configures exactly what no file does.
func TestConfigExampleIsTheDefaults(t *testing.T) {
	withFile := effective(serveFlags(t, "--config", exampleConfig))
	without := effective(serveFlags(t))
	for name, want := range without {
		if name != configFlag && withFile[name] != want {
			t.Errorf("%s: the example file sets %s, the default is %s", name, withFile[name], want)
		}
	}
}

// TestConfigCommandLineOverridesFile: a flag on the command line wins over
// the file, a list included (it replaces the file's list, not adds to it).
func TestConfigCommandLineOverridesFile(t *testing.T) {
	path := writeConfig(t, "cache-size = 5\nlisten = [\"127.82.0.1:53\"]\nallow = [\"10.0.0.0/8\"]\nlog-level = \"debug\"\n")
	o := serveFlags(t, "--config", path, "--cache-size", "9", "--allow", "192.0.2.0/24")
	if o.cacheSize != 9 {
		t.Errorf("cache-size %d, want 9 from the command line", o.cacheSize)
	}
	if got := o.allow.String(); got != "192.0.2.0/24" {
		t.Errorf("allow %s, want only the command line's", got)
	}
	if got := o.listen.String(); got != "127.82.0.1:53" {
		t.Errorf("listen %s, want the file's", got)
	}
	if o.logLevel != "debug" {
		t.Errorf("log-level %s, want the file's", o.logLevel)
	}
	var out bytes.Buffer
	o.writeEffectiveConfig(&out)
	for _, want := range []string{
		"cache-size = 9  # command line\n",
		"listen = [\"127.82.0.1:53\"]  # " + path + ":2\n",
		"max-conns = 1024  # default\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("effective configuration lacks %q:\n%s", want, out.String())
		}
	}
}

// TestConfigTablesGroupKeys: [cache] size, cache.size and an inline table
// all name cache-size.
func TestConfigTablesGroupKeys(t *testing.T) {
	for _, text := range []string{
		"[cache]\nsize = 11\n",
		"cache.size = 11\n",
		"cache = { size = 11 }\n",
		"cache-size = 11\n[upstream]\n[xfr]\n", // empty tables of flag groups
	} {
		o := serveFlags(t, "--config", writeConfig(t, text))
		if o.cacheSize != 11 {
			t.Errorf("%q: cache-size %d, want 11", text, o.cacheSize)
		}
	}
}

// TestConfigMistakes: each kind of mistake is an error at FILE:LINE naming
// the key, and nothing starts.
func TestConfigMistakes(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       string // after "FILE:"
	}{
		{"unknown key", "cache-size = 5\ncache-sise = 5\n", `2: cache-sise: unknown key (did you mean cache-size?)`},
		{"unknown key far from any flag", "\nfrobnicate = true\n", "2: frobnicate: unknown key (the keys are the flags of `sextant serve -h`"},
		{"underscores", "cache_size = 5\n", `1: cache_size: unknown key (did you mean cache-size?)`},
		{"unknown key in a table", "[cache]\nsize = 5\nbogus = 1\n", `3: cache.bogus: unknown key`},
		{"config in the file", "config = \"other.toml\"\n", `1: config: unknown key`},
		{"wrong type", "\n\ncache-size = \"big\"\n", `3: cache-size: wrong type: want an integer, got a string`},
		{"wrong type bool", "no-dnssec = 1\n", `1: no-dnssec: wrong type: want a boolean (true or false), got an integer`},
		{"list given a string", "listen = \"127.0.0.1:53\"\n", `1: listen: wrong type: want an array of strings, got a string`},
		{"list element type", "allow = [\"10.0.0.0/8\", 7]\n", `1: allow: wrong type: want an array of strings, element 2 is an integer`},
		{"table for a flag", "[listen]\na = 1\n", `2: listen.a: unknown key`},
		{"duplicate key", "cache-size = 5\nlog-level = \"info\"\ncache-size = 6\n", `3: cache-size: key cache-size is already defined`},
		{"duplicate through a table", "cache-size = 5\n[cache]\nsize = 6\n", `3: cache.size: sets cache-size again (already set as cache-size at line 1)`},
		{"value the flag rejects", "# clients\nallow = [\"10.0.0.0/8\", \"not-an-address\"]\n", `2: allow: invalid value "not-an-address": "not-an-address" is neither a CIDR prefix nor an address`},
		{"bad duration", "shutdown-timeout = \"soon\"\n", `1: shutdown-timeout: invalid value "soon"`},
		{"syntax", "cache-size = 5\nlisten = [\"a\",\n", `2: `},
		{"empty unknown table", "cache-size = 5\n[bogus]\n", `2: bogus: unknown key`},
		{"table for a list", "listen = {}\n", `1: listen: wrong type: want an array of strings, got a table`},
		{"array of tables", "\n[[zone]]\nfile = \"a.zone\"\n", `2: zone: wrong type: want an array of strings, element 1 is a table`},
		{"date", "clock-file = 2026-01-01\n", `1: clock-file: wrong type: want a string, got a date or time`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.text)
			var stderr bytes.Buffer
			_, err := parseServeFlags([]string{"--config", path}, &stderr)
			if err == nil {
				t.Fatalf("no error for\n%s", tc.text)
			}
			if want := path + ":" + tc.want; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\nwant %q", err, want)
			}
		})
	}
}

// TestConfigReportsEveryMistake: all mistakes of a file at once, in order.
func TestConfigReportsEveryMistake(t *testing.T) {
	path := writeConfig(t, "bogus = 1\ncache-size = \"x\"\nallow = [\"nope\"]\n")
	_, err := parseServeFlags([]string{"--config", path}, io.Discard)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 errors, got %q", err)
	}
	for i, key := range []string{"1: bogus", "2: cache-size", "3: allow"} {
		if !strings.HasPrefix(lines[i], path+":"+key+":") {
			t.Errorf("error %d: %q, want %s:%s", i+1, lines[i], path, key)
		}
	}
}

// TestConfigFileBounded: a huge file is refused before it is read whole.
func TestConfigFileBounded(t *testing.T) {
	path := writeConfig(t, "# "+strings.Repeat("x", maxConfigBytes)+"\n")
	if _, err := parseServeFlags([]string{"--config", path}, io.Discard); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("error %v, want larger than", err)
	}
	if _, err := parseServeFlags([]string{"--config", path + ".missing"}, io.Discard); err == nil {
		t.Fatal("a missing file is no error")
	}
}
