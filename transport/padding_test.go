package transport

import (
	"bytes"
	"io"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

func paddedQuery(t testing.TB, pad bool) []byte {
	q := dnstest.Query("example.", dns.TypeA)
	q.Id = 0
	q.SetEdns0(1232, false)
	if pad {
		q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_PADDING{Padding: make([]byte, 30)})
	}
	return mustPack(t, q)
}

// TestPaddingDoQAndDoH: DoQ and DoH pad answers to padded queries to a
// multiple of 468 bytes (RFC 8467); DoH leaves the others alone, DoQ pads
// every EDNS(0) answer (RFC 9250 5.4).
func TestPaddingDoQAndDoH(t *testing.T) {
	certs, ctls := testCerts(t)
	doq := startDoQ(t, "127.0.0.1:0", DoQConfig{ListenerConfig: ListenerConfig{Handler: answerA(2), Certs: certs}})
	doh, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: answerA(2), Certs: certs}, DisableHTTP3: true})
	qc := dialDoQ(t, doq, ctls)
	h2 := dohClients(t, ctls)["HTTP/2.0"]

	exchanges := map[string]func(q []byte) []byte{
		"doq": func(q []byte) []byte {
			resp, err := doqExchange(qc, frame(q))
			if err != nil || len(resp) < 2 {
				t.Fatalf("doq: %v", err)
			}
			return resp[2:]
		},
		"doh": func(q []byte) []byte {
			resp, err := h2.Post("https://"+doh+"/dns-query", mimeDNSMessage, bytes.NewReader(q))
			if err != nil {
				t.Fatalf("doh: %v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return b
		},
	}
	for name, exchange := range exchanges {
		for _, pad := range []bool{true, false} {
			b := exchange(paddedQuery(t, pad))
			m := new(dns.Msg)
			if err := m.Unpack(b); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(m.Answer) != 2 {
				t.Errorf("%s: %d answers", name, len(m.Answer))
			}
			if got := wantsPadding(m); got != (pad || name == "doq") {
				t.Errorf("%s: answer padded %v, want %v", name, got, pad)
			}
			if wantsPadding(m) && len(b)%paddingBlock != 0 {
				t.Errorf("%s: padded answer is %d bytes", name, len(b))
			}
		}
	}
}

func TestPackPaddedKeepsOPTAndLimit(t *testing.T) {
	q := dnstest.Query("example.", dns.TypeA)
	q.SetEdns0(1232, true)
	m := new(dns.Msg)
	m.SetReply(q)
	m.SetEdns0(4096, true)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "6869"})
	buf := make([]byte, maxMsgLen)
	b, err := packPadded(m, q, 1232, maxMsgLen, buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != paddingBlock {
		t.Fatalf("%d bytes, want %d", len(b), paddingBlock)
	}
	out := new(dns.Msg)
	if err := out.Unpack(b); err != nil {
		t.Fatal(err)
	}
	opt := out.IsEdns0()
	if opt == nil || opt.UDPSize() != 4096 || !opt.Do() || len(opt.Option) != 2 {
		t.Fatalf("OPT after padding: %v", opt)
	}
	if len(m.IsEdns0().Option) != 1 {
		t.Fatal("packPadded modified the handler's message")
	}
	b, err = packPadded(m, q, 1232, 100, buf)
	if err != nil || len(b) > paddingBlock {
		t.Fatalf("with a limit below the block: %d bytes, %v", len(b), err)
	}
}
