// Package scriptmain is what the long-running programs under scripts/
// (groundtruth, vmtraces, zerocost) share around their own work: a context
// that Ctrl-C and SIGTERM cancel, so that every QEMU and child they start
// is stopped on the way out; one way to report a failure and exit; their
// progress log, and what they log beside it (the load average, the last
// line of an output).
//
// It is for those commands only, not for the microwiper CLI, whose exit
// codes and output are part of its interface.
package scriptmain
