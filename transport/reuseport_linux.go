package transport

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported tells whether several UDP sockets can share a port so
// that the kernel spreads queries over them (one read loop per core).
const reusePortSupported = true

// reusePort sets SO_REUSEPORT on a socket before it is bound, so that it
// joins the group of the socket bound first (see bindUDP).
func reusePort(_, _ string, c syscall.RawConn) error {
	return setReusePort(c)
}

// shareBound sets SO_REUSEPORT on a socket already bound without it, the
// first of a group: Linux then lets sockets of the same user join it, and
// makes it the group's first member (index 0).
func shareBound(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("SO_REUSEPORT: %w", err)
	}
	return setReusePort(rc)
}

func setReusePort(c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return fmt.Errorf("SO_REUSEPORT: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("SO_REUSEPORT: %w", serr)
	}
	return nil
}

// steerToFirst attaches to c's SO_REUSEPORT group a classic BPF program
// that picks the socket by the query's DNS ID modulo n: only the group's
// first n members, ours, get queries, and a socket that joins later (a
// program of the same user that also sets SO_REUSEPORT) gets none. The
// program sees the UDP payload; a datagram too short for an ID goes to
// index 0. Clients pick IDs at random (RFC 5452 4.5), so queries spread evenly.
func steerToFirst(c *net.UDPConn, n int) error {
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 0},          // A = the DNS ID
		{Code: unix.BPF_ALU | unix.BPF_MOD | unix.BPF_K, K: uint32(n)}, // A %= n
		{Code: unix.BPF_RET | unix.BPF_A},                              // the socket index
	}
	if n == 1 { // everything to the first socket
		filter = []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("SO_ATTACH_REUSEPORT_CBPF: %w", err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("SO_ATTACH_REUSEPORT_CBPF: %w", err)
	}
	return nil
}

// joinSendOnly makes a non-blocking UDP socket bound to c's address with
// SO_REUSEPORT, joining c's group, outside Go's poller, and returns its
// descriptor. Bound after the group's readers, it gets no query once the
// steering program is attached (steerToFirst): it only sends. Sending
// through it wakes no one when the kernel frees a sent datagram, where
// c's own write-space wakeups reach the runtime's poller (udp_batch_linux.go).
func joinSendOnly(c *net.UDPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("send-only socket: %w", err)
	}
	var (
		sa     unix.Sockaddr
		v6only int
		serr   error
	)
	err = rc.Control(func(fd uintptr) {
		if sa, serr = unix.Getsockname(int(fd)); serr == nil {
			if _, ok := sa.(*unix.SockaddrInet6); ok {
				v6only, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
			}
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return -1, fmt.Errorf("send-only socket: %w", err)
	}
	family := unix.AF_INET
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, fmt.Errorf("send-only socket: %w", err)
	}
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	if err == nil {
		// The smallest receive buffer the kernel allows: nothing is read
		// from it, and what the steering program does not govern (a
		// broadcast or multicast copy to a wildcard group) has no room
		// to pile up.
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 0)
	}
	if err == nil && family == unix.AF_INET6 {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
	}
	if err == nil {
		err = unix.Bind(fd, sa)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("send-only socket: %w", err)
	}
	return fd, nil
}

// closeSendOnly closes a descriptor from joinSendOnly; -1 is none.
func closeSendOnly(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}
