// Package ctxtime holds the one wait that both the traffic shaper and the
// long-running scripts need: a sleep that a cancelled context cuts short,
// so that neither a shaped write nor a polling loop outlasts a Ctrl-C or
// a deadline.
package ctxtime
