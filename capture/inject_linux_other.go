//go:build linux && !amd64

package capture

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

func injectUserfaultfd(pid, tid int, userModeOK bool) (int, unix.Signal, error) {
	return -1, 0, fmt.Errorf("inject userfaultfd() into pid %d: only amd64 is implemented, not %s: use --backend soft-dirty: %w", pid, runtime.GOARCH, ErrNotSupported)
}

func wait4(tid int, ws *unix.WaitStatus) (int, error) {
	for {
		n, err := unix.Wait4(tid, ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}
