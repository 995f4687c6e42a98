package vpiv

import (
	"net"
	"syscall"
)

// quickAck asks Linux to acknowledge received data at once instead of delaying
// the ACK. The vpcd driver writes each frame's length and payload with separate
// send() calls on a socket with Nagle's algorithm on, so without this every APDU
// waits for the 40 ms delayed-ACK timer, several times per command. The flag is
// not sticky, so it is set again before each read.
func quickAck(conn net.Conn) {
	tc, ok := conn.(*net.TCPConn)
	if !ok || !quickAckEnabled {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
