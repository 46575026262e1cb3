//go:build !linux

package qmp

import (
	"errors"
	"net"
)

func peerPID(net.Conn) (int, error) { return 0, errors.New("peer pid: needs Linux (SO_PEERCRED)") }
