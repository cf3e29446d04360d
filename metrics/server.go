package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Timeouts of the metrics listener: a scrape is one small request, so a
// peer that is slower than this is not a Prometheus server.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 60 * time.Second
	// maxScrapesInFlight bounds concurrent scrapes: each reads every
	// source, so a flood of them must not take the resolver's CPU.
	maxScrapesInFlight = 4
)

// Handler serves src's metrics, with the Go runtime's and the process's,
// in the Prometheus text format (or OpenMetrics when asked).
func Handler(src Sources, log *slog.Logger) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		NewCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	opts := promhttp.HandlerOpts{MaxRequestsInFlight: maxScrapesInFlight, Timeout: writeTimeout}
	if log != nil {
		opts.ErrorLog = slogPrinter{log}
	}
	return promhttp.HandlerFor(reg, opts), nil
}

// Server is the metrics listener: /metrics only.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen opens addr and serves src's metrics on /metrics (everything else
// is 404) until Close.
func Listen(addr string, src Sources, log *slog.Logger) (*Server, error) {
	h, err := Handler(src, log)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	s := &Server{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
	}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && log != nil {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is the address listened on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the listener, letting a scrape in progress finish for a
// second.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// slogPrinter is promhttp's error log on slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("metrics: " + fmt.Sprint(v...)) }
