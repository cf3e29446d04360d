package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// jsonQuery builds the wire query for the JSON form: ?name= (required),
// &type= (mnemonic or number, default A), &cd= and &do= (1/true). The ID is
// 0 and RD set, as the public resolvers' JSON APIs do.
func jsonQuery(q url.Values, ednsSize int) ([]byte, error) {
	name := q.Get("name")
	if name == "" || len(name) > 253 {
		return nil, errors.New("bad name parameter")
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, errors.New("bad name parameter")
	}
	qtype := dns.TypeA
	if t := q.Get("type"); t != "" {
		if n, err := strconv.ParseUint(t, 10, 16); err == nil {
			qtype = uint16(n)
		} else if v, ok := dns.StringToType[strings.ToUpper(t)]; ok {
			qtype = v
		} else {
			return nil, fmt.Errorf("bad type parameter %q", t)
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Id = 0
	m.CheckingDisabled = flagParam(q.Get("cd"))
	if flagParam(q.Get("do")) {
		m.SetEdns0(uint16(ednsSize), true)
	}
	b, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("bad name parameter: %w", err)
	}
	return b, nil
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
