package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// notifier tells systemd about the service's state (sd_notify(3)), for a
// unit with Type=notify: READY=1 once every listener is open, RELOADING=1
// and READY=1 around a SIGHUP reload, STOPPING=1 at shutdown. Outside
// systemd (no NOTIFY_SOCKET) it does nothing. The protocol is one datagram
// per message on a Unix socket; a library for it would be larger than this.
type notifier struct {
	addr *net.UnixAddr // nil: not started by systemd
}

// newNotifier reads NOTIFY_SOCKET: a path, or "@name" for the abstract
// namespace.
func newNotifier() *notifier {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return &notifier{}
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	return &notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

// send delivers state (newline-separated KEY=VALUE lines).
func (n *notifier) send(state string) error {
	if n.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
	}
	return nil
}

func (n *notifier) ready(status string) error {
	return n.send("READY=1\nSTATUS=" + status)
}

// reloading starts a reload; systemd (>= 253, Type=notify-reload) wants the
// monotonic time with it, older versions ignore it.
func (n *notifier) reloading() error {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	usec := ts.Nano() / int64(time.Microsecond)
	return n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", usec))
}

func (n *notifier) stopping() error { return n.send("STOPPING=1") }
