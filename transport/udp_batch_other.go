//go:build !linux

package transport

// Elsewhere UDP sockets are read one datagram at a time.
type udpBatch struct{}

func newUDPBatch(*udpSocket) *udpBatch { return nil }

func (*udpBatch) loop() {}

func (*udpBatch) help() {}
