package socket

import "golang.org/x/sys/unix"

// outq is the number of bytes a TCP socket's send queue holds that the
// peer has not acknowledged (SIOCOUTQ), 0 when it cannot tell.
func outq(fd uintptr) int {
	n, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
	if err != nil {
		return 0
	}
	return n
}
