package transport

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// jsonQuery builds the wire query for the JSON form: ?name= (required),
// &type= (mnemonic or number, default A), &cd= and &do= (1/true). The ID is
// 0, RD set and EDNS(0) on, as the public resolvers' JSON APIs do.
func jsonQuery(q url.Values, ednsSize int) ([]byte, error) {
	name := q.Get("name")
	if name == "" || len(strings.TrimSuffix(name, ".")) > 253 {
		return nil, fmt.Errorf("bad name parameter %q", name)
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, fmt.Errorf("bad name parameter %q", name)
	}
	qtype := dns.TypeA
	if t := q.Get("type"); t != "" {
		var ok bool
		if qtype, ok = parseQType(t); !ok {
			return nil, fmt.Errorf("bad type parameter %q", t)
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Id = 0
	m.CheckingDisabled = flagParam(q.Get("cd"))
	// Always EDNS(0), so the handler may explain an error with Extended
	// DNS Errors (they become the Comment); DO only when asked.
	m.SetEdns0(uint16(ednsSize), flagParam(q.Get("do")))
	b, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("bad name parameter: %w", err)
	}
	return b, nil
}

// parseQType reads a query type by mnemonic (AAAA, aaaa, TYPE65) or number
// (1-65535). Type 0 and OPT are not types one can ask for.
func parseQType(t string) (uint16, bool) {
	var v uint16
	if n, err := strconv.ParseUint(t, 10, 16); err == nil {
		v = uint16(n)
	} else if n, ok := dns.StringToType[strings.ToUpper(t)]; ok {
		v = n
	} else if rest, ok := strings.CutPrefix(strings.ToUpper(t), "TYPE"); ok {
		n, err := strconv.ParseUint(rest, 10, 16)
		if err != nil {
			return 0, false
		}
		v = uint16(n)
	} else {
		return 0, false
	}
	if v == dns.TypeNone || v == dns.TypeOPT {
		return 0, false
	}
	return v, true
}

// wantJSON decides the answer's form: the ct parameter first (Google's
// ?ct=application/dns-message or application/dns-json), then the Accept
// header (Cloudflare's way: Accept: application/dns-json), and otherwise
// JSON exactly when the query came as ?name=.
func wantJSON(r *http.Request, q url.Values) bool {
	if ct := q.Get("ct"); ct != "" {
		switch mediaType(ct) {
		case mimeDNSJSON, "application/json", "application/x-javascript":
			return true
		case mimeDNSMessage:
			return false
		}
	}
	var wire, js bool
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			switch mediaType(part) {
			case mimeDNSMessage:
				wire = true
			case mimeDNSJSON:
				js = true
			}
		}
	}
	if wire != js {
		return js
	}
	return q.Has("name") && !q.Has("dns")
}

func mediaType(v string) string {
	mt, _, err := mime.ParseMediaType(strings.TrimSpace(v))
	if err != nil {
		return ""
	}
	return mt
}

// httpError answers with an HTTP error, as JSON ({"error": msg}) to a
// client that asked for JSON, as text otherwise.
func httpError(w http.ResponseWriter, msg string, status int, asJSON bool) {
	if !asJSON {
		http.Error(w, msg, status)
		return
	}
	b, err := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	if err != nil {
		http.Error(w, msg, status)
		return
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", mimeDNSJSON)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b)
}

func flagParam(v string) bool { return v == "1" || strings.EqualFold(v, "true") }

// jsonAnswer is the JSON form's answer, field for field as the common
// public resolvers return it.
type jsonAnswer struct {
	Status     int            `json:"Status"`
	TC         bool           `json:"TC"`
	RD         bool           `json:"RD"`
	RA         bool           `json:"RA"`
	AD         bool           `json:"AD"`
	CD         bool           `json:"CD"`
	Question   []jsonQuestion `json:"Question"`
	Answer     []jsonRR       `json:"Answer,omitempty"`
	Authority  []jsonRR       `json:"Authority,omitempty"`
	Additional []jsonRR       `json:"Additional,omitempty"`
	// Comment explains an error: the Extended DNS Errors (RFC 8914) of
	// the answer, or the rcode's name when it has none.
	Comment string `json:"Comment,omitempty"`
}

type jsonQuestion struct {
	Name string `json:"name"`
	Type uint16 `json:"type"`
}

type jsonRR struct {
	Name string `json:"name"`
	Type uint16 `json:"type"`
	TTL  uint32 `json:"TTL"`
	Data string `json:"data"`
}

func toJSONRRs(rrs []dns.RR) []jsonRR {
	var out []jsonRR
	for _, rr := range rrs {
		h := rr.Header()
		if h.Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, jsonRR{
			Name: h.Name,
			Type: h.Rrtype,
			TTL:  h.Ttl,
			Data: strings.TrimPrefix(rr.String(), h.String()),
		})
	}
	return out
}

// jsonComment is the Comment of the JSON answer to m: its Extended DNS
// Errors as "EDE(n): name (text)", or for an error rcode without them the
// rcode's name; empty for a plain success.
func jsonComment(m *dns.Msg) string {
	var parts []string
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			ede, ok := o.(*dns.EDNS0_EDE)
			if !ok {
				continue
			}
			c := fmt.Sprintf("EDE(%d): %s", ede.InfoCode, dns.ExtendedErrorCodeToString[ede.InfoCode])
			if ede.ExtraText != "" {
				c += " (" + ede.ExtraText + ")"
			}
			parts = append(parts, c)
		}
	}
	if len(parts) == 0 && m.Rcode != dns.RcodeSuccess {
		if name, ok := dns.RcodeToString[m.Rcode]; ok {
			return name
		}
		return "rcode " + strconv.Itoa(m.Rcode)
	}
	return strings.Join(parts, "; ")
}

func (d *dohWriter) writeJSON(m *dns.Msg) error {
	a := jsonAnswer{
		Status:     m.Rcode,
		TC:         m.Truncated,
		RD:         m.RecursionDesired,
		RA:         m.RecursionAvailable,
		AD:         m.AuthenticatedData,
		CD:         m.CheckingDisabled,
		Question:   []jsonQuestion{},
		Answer:     toJSONRRs(m.Answer),
		Authority:  toJSONRRs(m.Ns),
		Additional: toJSONRRs(m.Extra),
		Comment:    jsonComment(m),
	}
	for _, q := range m.Question {
		a.Question = append(a.Question, jsonQuestion{Name: q.Name, Type: q.Qtype})
	}
	b, err := json.Marshal(a)
	if err != nil {
		http.Error(d.w, "encoding answer", http.StatusInternalServerError)
		return fmt.Errorf("doh json: %w", err)
	}
	h := d.w.Header()
	h.Set("Content-Type", mimeDNSJSON)
	if ttl := minTTL(m); ttl >= 0 {
		h.Set("Cache-Control", "max-age="+strconv.Itoa(ttl))
	}
	d.w.WriteHeader(http.StatusOK)
	_, err = d.w.Write(b)
	return err
}
