// Command livecheck asks a running `sextant serve` one question over DoQ
// (RFC 9250) and one over DoH on HTTP/3, with quic-go's clients, for
// machines whose kdig and curl lack QUIC. It does not verify the
// certificate: it checks the protocols, not the trust.
//
//	go run ./transport/internal/livecheck DOQ-ADDR:PORT DOH-ADDR:PORT NAME
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: livecheck DOQ-ADDR:PORT DOH-ADDR:PORT NAME")
		os.Exit(2)
	}
	doq, doh, name := os.Args[1], os.Args[2], os.Args[3]
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	q.Id = 0
	q.SetEdns0(1232, true)
	wire, _ := q.Pack()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	conn, err := quic.DialAddr(ctx, doq, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"doq"}}, nil)
	if err != nil {
		fmt.Println("doq dial:", err)
		os.Exit(1)
	}
	st, _ := conn.OpenStreamSync(ctx)
	st.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(wire))), wire...))
	st.Close()
	resp, err := io.ReadAll(st)
	if err != nil || len(resp) < 2 {
		fmt.Println("doq read:", err)
		os.Exit(1)
	}
	m := new(dns.Msg)
	if err := m.Unpack(resp[2:]); err != nil {
		fmt.Println("doq unpack:", err)
		os.Exit(1)
	}
	fmt.Printf("DoQ  %s: ALPN %s, %d bytes (padded %v): %s %v\n", doq, conn.ConnectionState().TLS.NegotiatedProtocol, len(resp)-2,
		len(resp[2:])%468 == 0, dns.RcodeToString[m.Rcode], m.Answer)
	conn.CloseWithError(0, "")

	tr := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.Close()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	hr, err := c.Post("https://"+doh+"/dns-query", "application/dns-message", bytes.NewReader(wire))
	if err != nil {
		fmt.Println("h3:", err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(hr.Body)
	hr.Body.Close()
	m = new(dns.Msg)
	if err := m.Unpack(body); err != nil {
		fmt.Println("h3 unpack:", err)
		os.Exit(1)
	}
	fmt.Printf("DoH  %s over %s: status %d, %s, Cache-Control %q: %s %v\n", doh, hr.Proto, hr.StatusCode, hr.Header.Get("Content-Type"),
		hr.Header.Get("Cache-Control"), dns.RcodeToString[m.Rcode], m.Answer)
}
