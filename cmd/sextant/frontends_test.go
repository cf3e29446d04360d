package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/transport"
)

// refuseAll answers every query REFUSED: these tests look at the front
// ends, not at answers.
var refuseAll = transport.HandlerFunc(func(_ context.Context, w transport.ResponseWriter, r *transport.Request) {
	m := new(dns.Msg)
	m.SetRcode(r.Msg, dns.RcodeRefused)
	w.WriteMsg(m)
})

// TestFrontEndsDoHAltSvcPerListener: with two --doh listeners on different
// ports, each advertises its own HTTP/3 port in Alt-Svc.
func TestFrontEndsDoHAltSvcPerListener(t *testing.T) {
	o := &frontEndOptions{listen: stringList{"127.0.0.1:0"}, doh: stringList{"127.0.0.1:0", "127.0.0.1:0"}}
	fes, _, err := startFrontEnds(o, refuseAll, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdownAll(ctx, fes)
	})
	var dohTCP []string
	for _, fe := range fes {
		if _, ok := fe.(*transport.DoH); !ok {
			continue
		}
		for _, a := range fe.Addrs() {
			if _, ok := a.(*net.TCPAddr); ok {
				dohTCP = append(dohTCP, a.String())
			}
		}
	}
	if len(dohTCP) != 2 || dohTCP[0] == dohTCP[1] {
		t.Fatalf("DoH TCP addresses %v, want two ports", dohTCP)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // self-signed; the header is what counts
		ForceAttemptHTTP2: true,
	}}
	defer client.CloseIdleConnections()
	for _, addr := range dohTCP {
		resp, err := client.Get("https://" + addr + "/dns-query?name=www.example&type=A")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		_, port, _ := net.SplitHostPort(addr)
		if want := fmt.Sprintf(`h3=":%s"; ma=86400`, port); resp.Header.Get("Alt-Svc") != want {
			t.Errorf("%s (%s): Alt-Svc %q, want %q", addr, resp.Proto, resp.Header.Get("Alt-Svc"), want)
		}
	}
}

// TestFrontEndsValidateFirst: a bad listener configuration is reported for
// the front end it belongs to, before any front end starts.
func TestFrontEndsValidateFirst(t *testing.T) {
	cases := []struct {
		name    string
		o       frontEndOptions
		wantErr string
	}{
		{"doq address without port", frontEndOptions{listen: stringList{"127.0.0.1:0"}, doq: stringList{"127.0.0.1"}}, "doq: listen address"},
		{"doh address without port", frontEndOptions{listen: stringList{"127.0.0.1:0"}, doh: stringList{"localhost"}}, "doh: listen address"},
		{"negative share", frontEndOptions{listen: stringList{"127.0.0.1:0"}, connsPerClient: -1}, "must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fes, _, err := startFrontEnds(&tc.o, refuseAll, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || fes != nil {
				t.Errorf("front ends %v, error %v; want none and %q", fes, err, tc.wantErr)
			}
		})
	}
}
