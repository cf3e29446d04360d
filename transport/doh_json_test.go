package transport

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// jsonTestHandler answers so that every JSON field can be checked: an A
// record for the name asked, a TXT telling the DO and CD bits it saw, AD
// set; "fail.example." gets SERVFAIL with an Extended DNS Error when the
// query has EDNS(0); and
// "gone.example." NXDOMAIN with an SOA.
func jsonTestHandler() Handler {
	return HandlerFunc(func(_ context.Context, w ResponseWriter, r *Request) {
		q := r.Msg.Question[0]
		m := new(dns.Msg)
		m.SetReply(r.Msg)
		m.RecursionAvailable = true
		do := r.Msg.IsEdns0() != nil && r.Msg.IsEdns0().Do()
		switch q.Name {
		case "fail.example.":
			m.Rcode = dns.RcodeServerFailure
			if r.Msg.IsEdns0() != nil { // as the resolver does: EDE needs an OPT
				m.SetEdns0(1232, do)
				m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeDNSBogus, ExtraText: "test"})
			}
		case "gone.example.":
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
				Ns: "ns.example.", Mbox: "h.example.", Serial: 1, Refresh: 2, Retry: 3, Expire: 4, Minttl: 300}}
		default:
			m.AuthenticatedData = true
			m.Answer = []dns.RR{
				&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 120}, A: net.IPv4(192, 0, 2, 7).To4()},
				&dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 120},
					Txt: []string{"qtype=" + dns.TypeToString[q.Qtype], "do=" + boolWord(do), "cd=" + boolWord(r.Msg.CheckingDisabled)}},
			}
		}
		w.WriteMsg(m)
	})
}

func boolWord(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// jsonReply is the JSON form as Google and Cloudflare return it.
type jsonReply struct {
	Status   int
	TC       bool
	RD       bool
	RA       bool
	AD       bool
	CD       bool
	Question []struct {
		Name string `json:"name"`
		Type int    `json:"type"`
	}
	Answer []struct {
		Name string `json:"name"`
		Type int    `json:"type"`
		TTL  int    `json:"TTL"`
		Data string `json:"data"`
	}
	Authority []struct {
		Name string `json:"name"`
		Type int    `json:"type"`
		TTL  int    `json:"TTL"`
		Data string `json:"data"`
	}
	Comment string
	Error   string `json:"error"`
}

// TestDoHJSON: the JSON form is chosen by ?name=, by Accept:
// application/dns-json, or by ?ct=; it carries the fields the public
// resolvers' JSON APIs do; bad input is a 400 with a JSON error.
func TestDoHJSON(t *testing.T) {
	certs, ctls := testCerts(t)
	tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: jsonTestHandler(), Certs: certs}})
	base := "https://" + tcp + "/dns-query"
	q := dnstest.Query("wire.example.", dns.TypeA)
	q.Id = 0
	b64 := base64.RawURLEncoding.EncodeToString(mustPack(t, q))

	cases := []struct {
		name       string
		method     string
		url        string
		accept     string
		body       string
		wantStatus int
		wantJSON   bool
		check      func(t *testing.T, a jsonReply)
	}{
		{name: "name and type by mnemonic", url: base + "?name=www.example&type=aaaa", wantStatus: 200, wantJSON: true,
			check: func(t *testing.T, a jsonReply) {
				if a.Status != 0 || !a.RD || !a.RA || !a.AD || a.CD || a.TC {
					t.Errorf("flags %+v", a)
				}
				if len(a.Question) != 1 || a.Question[0].Name != "www.example." || a.Question[0].Type != 28 {
					t.Errorf("question %+v", a.Question)
				}
				if len(a.Answer) != 2 || a.Answer[0].Data != "192.0.2.7" || a.Answer[0].TTL != 120 || a.Answer[0].Type != 1 || a.Answer[0].Name != "www.example." {
					t.Errorf("answer %+v", a.Answer)
				}
				if a.Answer[1].Data != `"qtype=AAAA" "do=0" "cd=0"` {
					t.Errorf("TXT data %q", a.Answer[1].Data)
				}
				if a.Comment != "" {
					t.Errorf("comment %q on success", a.Comment)
				}
			}},
		{name: "type by number, do and cd", url: base + "?name=www.example.&type=65&do=1&cd=true", wantStatus: 200, wantJSON: true,
			check: func(t *testing.T, a jsonReply) {
				if len(a.Answer) != 2 || a.Answer[1].Data != `"qtype=HTTPS" "do=1" "cd=1"` || !a.CD {
					t.Errorf("answer %+v CD %v", a.Answer, a.CD)
				}
			}},
		{name: "type as TYPEnnn", url: base + "?name=www.example&type=TYPE64", wantStatus: 200, wantJSON: true,
			check: func(t *testing.T, a jsonReply) {
				if len(a.Question) != 1 || a.Question[0].Type != 64 {
					t.Errorf("question %+v", a.Question)
				}
			}},
		{name: "default type A", url: base + "?name=www.example", wantStatus: 200, wantJSON: true,
			check: func(t *testing.T, a jsonReply) {
				if len(a.Question) != 1 || a.Question[0].Type != 1 {
					t.Errorf("question %+v", a.Question)
				}
			}},
		{name: "Accept dns-json with name (Cloudflare's form)", url: base + "?name=www.example&type=A", accept: mimeDNSJSON, wantStatus: 200, wantJSON: true},
		{name: "Accept dns-json with ?dns=", url: base + "?dns=" + b64, accept: mimeDNSJSON, wantStatus: 200, wantJSON: true,
			check: func(t *testing.T, a jsonReply) {
				if len(a.Question) != 1 || a.Question[0].Name != "wire.example." {
					t.Errorf("question %+v", a.Question)
				}
			}},
		{name: "Accept list with q-values", url: base + "?dns=" + b64, accept: "text/html, application/dns-json;q=0.9", wantStatus: 200, wantJSON: true},
		{name: "ct=application/dns-json with ?dns=", url: base + "?dns=" + b64 + "&ct=application/dns-json", wantStatus: 200, wantJSON: true},
		{name: "ct=application/dns-message with name gives wire", url: base + "?name=www.example&ct=application/dns-message", wantStatus: 200, wantJSON: false},
		{name: "Accept dns-message with name gives wire", url: base + "?name=www.example", accept: mimeDNSMessage, wantStatus: 200, wantJSON: false},
		{name: "POST with Accept dns-json", method: "POST", url: base, accept: mimeDNSJSON, body: string(mustPack(t, q)), wantStatus: 200, wantJSON: true},
		{name: "plain ?dns= stays wire", url: base + "?dns=" + b64, wantStatus: 200, wantJSON: false},
		{name: "SERVFAIL with EDE has a Comment", url: base + "?name=fail.example", wantStatus: 200, wantJSON: true,
			check: func(t *testing.T, a jsonReply) {
				if a.Status != dns.RcodeServerFailure || !strings.Contains(a.Comment, "EDE(6): DNSSEC Bogus (test)") {
					t.Errorf("status %d comment %q", a.Status, a.Comment)
				}
			}},
		{name: "NXDOMAIN has authority and a Comment", url: base + "?name=gone.example", wantStatus: 200, wantJSON: true,
			check: func(t *testing.T, a jsonReply) {
				if a.Status != dns.RcodeNameError || a.Comment != "NXDOMAIN" || len(a.Authority) != 1 || a.Authority[0].Type != int(dns.TypeSOA) {
					t.Errorf("%+v", a)
				}
			}},
		{name: "bad type", url: base + "?name=www.example&type=NOPE", wantStatus: 400, wantJSON: true},
		{name: "type 0", url: base + "?name=www.example&type=0", wantStatus: 400, wantJSON: true},
		{name: "type OPT", url: base + "?name=www.example&type=OPT", wantStatus: 400, wantJSON: true},
		{name: "type out of range", url: base + "?name=www.example&type=70000", wantStatus: 400, wantJSON: true},
		{name: "label too long", url: base + "?name=" + strings.Repeat("a", 64) + ".example", wantStatus: 400, wantJSON: true},
		{name: "name too long", url: base + "?name=" + strings.Repeat("abcdefghi.", 26), wantStatus: 400, wantJSON: true},
		{name: "empty name", url: base + "?name=", wantStatus: 400, wantJSON: true},
		{name: "bad ?dns= with Accept dns-json", url: base + "?dns=%21%21", accept: mimeDNSJSON, wantStatus: 400, wantJSON: true},
	}
	client := dohClients(t, ctls)["HTTP/2.0"]
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			req, err := http.NewRequest(method, tc.url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			if method == "POST" {
				req.Header.Set("Content-Type", mimeDNSMessage)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.wantStatus)
			}
			ct := resp.Header.Get("Content-Type")
			if !tc.wantJSON {
				if ct != mimeDNSMessage {
					t.Fatalf("Content-Type %q, want %s", ct, mimeDNSMessage)
				}
				if err := new(dns.Msg).Unpack(body); err != nil {
					t.Fatal(err)
				}
				return
			}
			if ct != mimeDNSJSON {
				t.Fatalf("Content-Type %q, want %s (%s)", ct, mimeDNSJSON, body)
			}
			var a jsonReply
			if err := json.Unmarshal(body, &a); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if tc.wantStatus != 200 {
				if a.Error == "" {
					t.Fatalf("error answer without an error field: %s", body)
				}
				return
			}
			if tc.check != nil {
				tc.check(t, a)
			}
		})
	}
}

// TestDoHNegativeCacheLifetime: the freshness lifetime of a negative
// answer is no more than its SOA's MINIMUM (RFC 8484 5.1), though the SOA
// record's own TTL is longer.
func TestDoHNegativeCacheLifetime(t *testing.T) {
	certs, ctls := testCerts(t)
	tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: jsonTestHandler(), Certs: certs}, DisableHTTP3: true})
	q := dnstest.Query("gone.example.", dns.TypeA)
	q.Id = 0
	client := dohClients(t, ctls)["HTTP/2.0"]
	for _, url := range []string{
		"https://" + tcp + "/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(mustPack(t, q)),
		"https://" + tcp + "/dns-query?name=gone.example",
	} {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if cc := resp.Header.Get("Cache-Control"); cc != "max-age=300" {
			t.Errorf("%s: Cache-Control %q, want max-age=300 (the SOA MINIMUM)", url, cc)
		}
	}
}
