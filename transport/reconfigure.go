package transport

import "fmt"

// Settings a running front end takes without a restart, for a program's
// configuration reload. The access list (AccessList) and the rate limiter
// (RateLimiter.Reconfigure) are shared values changed on their own; the
// connection limits belong to each front end.

// SetConnLimits changes the Do53 TCP connection cap and shares (see
// ListenerConfig.MaxConns and ConnLimits; zero means the default). Open
// connections stay, even above a lowered limit.
func (s *Do53) SetConnLimits(maxConns int, l ConnLimits) error {
	return setConnLimits(maxConns, l, s.tcp.adm)
}

// SetConnLimits is Do53.SetConnLimits for DoT.
func (s *DoT) SetConnLimits(maxConns int, l ConnLimits) error {
	return setConnLimits(maxConns, l, s.srv.adm)
}

// SetConnLimits is Do53.SetConnLimits for DoH: HTTP/1.1 and HTTP/2 on TCP
// and HTTP/3 each get the cap.
func (s *DoH) SetConnLimits(maxConns int, l ConnLimits) error {
	return setConnLimits(maxConns, l, s.tcpAdm, s.quicAdm)
}

// SetConnLimits is Do53.SetConnLimits for DoQ.
func (s *DoQ) SetConnLimits(maxConns int, l ConnLimits) error {
	return setConnLimits(maxConns, l, s.adm)
}

// setConnLimits checks the limits once, then applies them to each admission.
func setConnLimits(maxConns int, l ConnLimits, adms ...*admission) error {
	if maxConns < 0 {
		return fmt.Errorf("connection cap %d must not be negative", maxConns)
	}
	if maxConns == 0 {
		maxConns = defaultMaxConns
	}
	if _, err := l.resolve(maxConns); err != nil {
		return err
	}
	for _, a := range adms {
		if err := a.reconfigure(maxConns, l); err != nil {
			return err
		}
	}
	return nil
}
