// Package wire is the versioned protocol between the socket engine's sender
// (the migration source) and its receiver (the destination, in-process or
// `microwiper serve`).
//
// Every message is a frame: an 8-byte header (type u8, three zero bytes,
// payload length u32 little-endian) and the payload. All integers are
// little-endian. A session runs:
//
//	sender                               receiver
//	Hello{magic, version, page size,
//	      pages, batch pages}         →
//	                                  ←  Challenge{32-byte nonce}
//	Auth{HMAC-SHA256(token, label ‖
//	     nonce ‖ hello)}              →
//	                                  ←  Welcome{status, message}
//	Batch … Batch                     →  (pages written into memory)
//	RoundEnd{round, pages, final}     →
//	                                  ←  RoundAck{round, pages received}
//	… more rounds …
//	Finish                            →
//	                                  ←  Verify{first page, (version, crc)…} …
//
// A Batch carries up to Hello.BatchPages pages, each with a 16-byte header
// (page index u64 whose top bit marks a zero page sent as header only, and
// the page's version u64) followed by page-size bytes unless zero, and ends
// with a CRC-32C of everything before it, so a receiver only writes pages
// it has verified. The receiver counts the pages of each round and
// acknowledges the count; the sender checks it, which makes "the final page
// was received and verified" an observable event (the end of the measured
// downtime). Verify frames return each page's version and CRC-32C so the
// sender can compare the destination's memory with its own page by page.
// Either side may send Error with a one-line reason before it closes.
//
// Authentication is a challenge-response: the token never crosses the
// wire, the receiver draws a fresh random nonce per connection, so bytes
// recorded from one session do not authenticate another, and the MAC
// covers the Hello, so the sizes cannot be changed in transit. A receiver
// may answer a Hello with a refusing Welcome instead of a Challenge (wrong
// version, malformed, busy, too many failed attempts). The link is not
// encrypted: page contents and sizes travel in clear, and an on-path
// attacker can read them or cut the session (use a VPN or an SSH tunnel
// across untrusted networks). Version 1 sent the token in clear; the two
// versions refuse each other with a Welcome naming both.
//
// The Reader refuses frames longer than its limit before reading their
// payload, so a peer cannot make it allocate more than the limit; parsers
// check every length against the payload and never panic on bad input.
package wire
