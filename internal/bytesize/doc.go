// Package bytesize writes byte counts for people, in binary units with one
// decimal ("2.3 GiB"), as the replay engines' refusals state what a trace
// needs and what they allow. It lives apart so that replay and
// replay/socket say sizes the same way without either exporting a
// formatter.
package bytesize
