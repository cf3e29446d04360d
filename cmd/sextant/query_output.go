package main

// The output of `sextant query` (and of `sextant ctl trace`): text that
// reads like dig's, or with --json one object whose schema is documented in
// the README and kept stable for scripts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/security"
)

// inProcessServer is what the SERVER line names: `sextant query` asks no
// resolver, it is one.
const inProcessServer = "in-process"

// queryReport is one resolution as printed; its JSON field names are the
// documented schema.
type queryReport struct {
	Question  jsonQuestion `json:"question"`
	Rcode     string       `json:"rcode"`
	Flags     []string     `json:"flags"`
	Security  string       `json:"security"`
	Answer    []jsonRR     `json:"answer"`
	Authority []jsonRR     `json:"authority"`
	EDE       *jsonEDE     `json:"ede,omitempty"`
	Error     string       `json:"error,omitempty"`
	TimeMS    float64      `json:"time_ms"`
	Server    string       `json:"server"`
	Trace     []string     `json:"trace,omitempty"`

	id  uint16
	ans []dns.RR
	ns  []dns.RR
}

type jsonQuestion struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Class string `json:"class"`
}

type jsonRR struct {
	Name string `json:"name"`
	Type string `json:"type"`
	TTL  uint32 `json:"ttl"`
	Data string `json:"data"`
}

type jsonEDE struct {
	Code uint16 `json:"code"`
	Name string `json:"name"`
	Text string `json:"text"`
}

// resolveForReport resolves name/qtype for a report: an answer, or a
// failure as a client would see it (its rcode and nothing else) and why.
// Only an error that is no resolution failure is returned as err.
func resolveForReport(ctx context.Context, res *resolver.Resolver, name string, qtype uint16) (*resolver.Result, *resolver.Error, error) {
	result, err := res.Resolve(ctx, name, qtype)
	if err == nil {
		return result, nil, nil
	}
	var failure *resolver.Error
	if !errors.As(err, &failure) {
		return nil, nil, fmt.Errorf("resolve %s %s: %w", name, dns.TypeToString[qtype], err)
	}
	return &resolver.Result{Rcode: failure.Rcode, Security: failure.Security}, failure, nil
}

// newQueryReport describes r, the result of name/qtype that took took, and
// failure, why it failed (nil for an answer).
func newQueryReport(name string, qtype uint16, r *resolver.Result, failure *resolver.Error, took time.Duration, server string) *queryReport {
	rep := &queryReport{
		Question: jsonQuestion{Name: name, Type: typeString(qtype), Class: "IN"},
		Rcode:    rcodeString(r.Rcode),
		Flags:    resultFlags(r),
		Security: r.Security.String(),
		Answer:   jsonRRs(r.Answer),
		// dig prints the authority section of every answer; so do we.
		Authority: jsonRRs(r.Authority),
		TimeMS:    float64(took.Microseconds()) / 1000,
		Server:    server,
		id:        dns.Id(),
		ans:       r.Answer,
		ns:        r.Authority,
	}
	ede := r.ExtendedError()
	if failure != nil {
		ede = failure
	}
	if ede != nil {
		rep.EDE = &jsonEDE{Code: ede.EDE, Name: dns.ExtendedErrorCodeToString[ede.EDE], Text: ede.Text}
		rep.Error = ede.Error()
	}
	return rep
}

// resultFlags are the header flags a client would see: qr, rd and ra
// always, ad for a secure answer (RFC 4035 3.2.3).
func resultFlags(r *resolver.Result) []string {
	flags := []string{"qr", "rd", "ra"}
	if r.Security == security.Secure && r.Rcode != dns.RcodeServerFailure {
		flags = append(flags, "ad")
	}
	return flags
}

func typeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}

func rcodeString(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

// jsonRRs renders records with data in presentation format; never nil, so
// the JSON has [] rather than null.
func jsonRRs(rrs []dns.RR) []jsonRR {
	out := make([]jsonRR, 0, len(rrs))
	for _, rr := range rrs {
		h := rr.Header()
		out = append(out, jsonRR{
			Name: h.Name,
			Type: typeString(h.Rrtype),
			TTL:  h.Ttl,
			Data: strings.TrimPrefix(rr.String(), h.String()),
		})
	}
	return out
}

func (rep *queryReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}

// writeText prints the report the way dig prints an answer: header, the
// EDE in the OPT pseudo-section, the sections, then time and server. A
// summary line with the security status comes first, as delv's does.
func (rep *queryReport) writeText(w io.Writer) {
	fmt.Fprintf(w, ";; %s %s: rcode %s, security %s\n", rep.Question.Name, rep.Question.Type, rep.Rcode, rep.Security)
	if rep.Error != "" {
		// On SERVFAIL it says why; on an answer it is information, such as
		// EDE 27 for an NSEC3 chain treated as insecure.
		label := "extended error"
		if rep.Rcode == "SERVFAIL" {
			label = "error"
		}
		fmt.Fprintf(w, ";; %s: %s\n", label, rep.Error)
	}
	fmt.Fprintf(w, ";; ->>HEADER<<- opcode: QUERY, status: %s, id: %d\n", rep.Rcode, rep.id)
	additional := 0
	if rep.EDE != nil {
		additional = 1 // the OPT record that would carry the EDE (RFC 8914)
	}
	fmt.Fprintf(w, ";; flags: %s; QUERY: 1, ANSWER: %d, AUTHORITY: %d, ADDITIONAL: %d\n",
		strings.Join(rep.Flags, " "), len(rep.ans), len(rep.ns), additional)
	if rep.EDE != nil {
		fmt.Fprintf(w, "\n;; OPT PSEUDOSECTION:\n; EDE: %d (%s): (%s)\n", rep.EDE.Code, rep.EDE.Name, rep.EDE.Text)
	}
	fmt.Fprintf(w, "\n;; QUESTION SECTION:\n;%s\t\tIN\t%s\n", rep.Question.Name, rep.Question.Type)
	writeSection(w, "ANSWER", rep.ans)
	writeSection(w, "AUTHORITY", rep.ns)
	fmt.Fprintf(w, "\n;; Query time: %d msec\n;; SERVER: %s\n;; WHEN: %s\n\n",
		int64(rep.TimeMS), rep.Server, time.Now().UTC().Format(time.UnixDate))
}

func writeSection(w io.Writer, name string, rrs []dns.RR) {
	if len(rrs) == 0 {
		return
	}
	fmt.Fprintf(w, "\n;; %s SECTION:\n", name)
	for _, rr := range rrs {
		fmt.Fprintln(w, rr.String())
	}
}
