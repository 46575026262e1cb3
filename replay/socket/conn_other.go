//go:build !linux

package socket

// outq cannot look into the send queue here. Only the netns link, which is
// Linux-only, is kernel-shaped and needs it; on the userspace-shaped links
// the sender's clock already stands where its token bucket put the bytes.
func outq(fd uintptr) int { return 0 }
