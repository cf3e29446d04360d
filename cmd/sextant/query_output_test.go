package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/sextant-dns/sextant/lab"
)

// TestQueryOutputLikeDig: the text output has dig's header, flags (ad only
// when secure), sections, EDE in the OPT pseudo-section, query time and
// the in-process server; --json prints one object of the documented
// schema, with the trace inside it when --trace is given.
func TestQueryOutputLikeDig(t *testing.T) {
	dir := startLab(t)
	flags := []string{"query", "--root-hints", filepath.Join(dir, lab.FileRootHints), "--trust-anchor", filepath.Join(dir, lab.FileRootDS)}
	text := []struct {
		name     string
		args     []string
		wantExit int
		want     []string
		unwanted []string
	}{
		{"secure", []string{"www." + lab.SecureAlg13, "A"}, 0, []string{
			";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: ",
			";; flags: qr rd ra ad; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 0",
			";; QUESTION SECTION:\n;www." + lab.SecureAlg13 + "\t\tIN\tA\n",
			";; ANSWER SECTION:\nwww." + lab.SecureAlg13,
			";; Query time: ", ";; SERVER: in-process\n",
		}, []string{"OPT PSEUDOSECTION", "AUTHORITY SECTION"}},
		{"bogus", []string{"www." + lab.BogusSig, "A"}, 1, []string{
			"status: SERVFAIL", ";; flags: qr rd ra;",
			";; OPT PSEUDOSECTION:\n; EDE: 6 (DNSSEC Bogus): (",
		}, []string{"ANSWER SECTION", " ad"}},
		{"nxdomain", []string{"nonexistent." + lab.SecureAlg13, "A"}, 0, []string{
			"status: NXDOMAIN", ";; flags: qr rd ra ad;", ";; AUTHORITY SECTION:\n" + lab.SecureAlg13 + "\t300\tIN\tSOA",
		}, []string{"ANSWER SECTION"}},
	}
	for _, tc := range text {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			code := run(context.Background(), append(append([]string{}, flags...), tc.args...), &out, &out)
			if code != tc.wantExit {
				t.Errorf("exit %d, want %d", code, tc.wantExit)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, u := range tc.unwanted {
				if strings.Contains(out.String(), u) {
					t.Errorf("output has %q:\n%s", u, out.String())
				}
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		var stdout, stderr syncBuffer
		code := run(context.Background(), append(append([]string{}, flags...), "--json", "--trace", "www."+lab.BogusSig, "A"), &stdout, &stderr)
		if code != 1 {
			t.Errorf("exit %d, want 1 (SERVFAIL)", code)
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(stdout.String()), &raw); err != nil {
			t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout.String())
		}
		var keys []string
		for k := range raw {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		// The documented schema (README); a change here breaks scripts.
		want := []string{"answer", "authority", "ede", "error", "flags", "question", "rcode", "security", "server", "time_ms", "trace"}
		if !reflect.DeepEqual(keys, want) {
			t.Errorf("keys %v, want %v", keys, want)
		}
		var rep struct {
			Question struct{ Name, Type, Class string }
			Rcode    string
			Flags    []string
			Security string
			Answer   []jsonRR
			EDE      struct {
				Code uint16
				Text string
			}
			Server string
			Trace  []string
		}
		if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Question.Name != "www."+lab.BogusSig || rep.Question.Type != "A" || rep.Rcode != "SERVFAIL" ||
			rep.Security != "bogus" || rep.EDE.Code != 6 || rep.EDE.Text == "" || rep.Server != "in-process" ||
			len(rep.Trace) == 0 || len(rep.Answer) != 0 || strings.Join(rep.Flags, " ") != "qr rd ra" {
			t.Errorf("unexpected report %+v", rep)
		}
	})

	t.Run("json answer records", func(t *testing.T) {
		var stdout syncBuffer
		if code := run(context.Background(), append(append([]string{}, flags...), "--json", "www."+lab.SecureAlg13, "A"), &stdout, &stdout); code != 0 {
			t.Fatalf("exit %d\n%s", code, stdout.String())
		}
		var rep queryReport
		if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Answer) != 2 || rep.Answer[0].Name != "www."+lab.SecureAlg13 || rep.Answer[0].Type != "A" ||
			rep.Answer[0].TTL == 0 || rep.Answer[0].Data == "" || strings.Contains(rep.Answer[0].Data, "\t") ||
			rep.Answer[1].Type != "RRSIG" || rep.EDE != nil || strings.Join(rep.Flags, " ") != "qr rd ra ad" {
			t.Errorf("unexpected report %+v", rep)
		}
	})
}
