// Package netns builds the socket engine's "netns" link: two network
// namespaces joined by a veth pair, with kernel tbf shaping the data
// direction to the link rate and netem adding the round-trip time where the
// kernel has it. Nothing is routed outside: the pair's addresses
// (10.199.0.1/30 and 10.199.0.2/30) exist only inside the two namespaces.
//
// A Pair is removed by Close, which the engine defers, so an error or a
// cancelled context (Ctrl-C) removes everything too. Namespaces carry the
// creating process's pid in their names; Create first removes namespaces
// left behind by processes that no longer exist (a run killed with SIGKILL).
//
// Sockets are opened inside a namespace from a goroutine locked to an OS
// thread that enters it with setns(2) and leaves again before unlocking; a
// socket stays in the namespace it was created in, so the rest of the
// engine uses it from any thread. Creating namespaces needs root
// (CAP_SYS_ADMIN and CAP_NET_ADMIN) and the iproute2 tools ip and tc.
package netns
