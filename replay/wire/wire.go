package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Version is the protocol version this build speaks. A receiver refuses
// any other. Version 2 replaced the token sent in clear (version 1) with a
// challenge-response.
const Version = 2

// Magic opens every Hello, so a stray client (a port scanner, an HTTP
// request) is told apart from a sender of another protocol version.
const Magic = "microwpr"

// FrameHeaderBytes is the size of a frame header.
const FrameHeaderBytes = 8

// PageHeaderBytes is the per-page header inside a Batch; it is also the
// header cost the link model charges per page.
const PageHeaderBytes = 16

// zeroFlag marks a page sent as header only (a zero page).
const zeroFlag = uint64(1) << 63

// MaxPageSize bounds the page size a Hello may announce (1 GiB huge pages
// are not pages a migration streams in batches).
const MaxPageSize = 1 << 21

// MaxBatchPages bounds the pages in one Batch.
const MaxBatchPages = 1 << 16

// MaxBatchBytes bounds a Batch payload (the receiver holds a frame buffer
// of this size per session): 256 pages of the largest page size fit.
const MaxBatchBytes = 1<<29 + 1<<16

// NonceBytes is the size of a Challenge's nonce and MACBytes of an Auth's
// MAC (HMAC-SHA256).
const (
	NonceBytes = 32
	MACBytes   = sha256.Size
)

// MaxVerifyPages bounds the entries in one Verify frame.
const MaxVerifyPages = 1 << 16

// verifyEntryBytes is one Verify entry: version u64 + crc u32.
const verifyEntryBytes = 12

// Type is a frame's type.
type Type uint8

// Frame types.
const (
	TypeHello     Type = 1
	TypeWelcome   Type = 2
	TypeBatch     Type = 3
	TypeRoundEnd  Type = 4
	TypeRoundAck  Type = 5
	TypeFinish    Type = 6
	TypeVerify    Type = 7
	TypeError     Type = 8
	TypeChallenge Type = 9
	TypeAuth      Type = 10
)

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeWelcome:
		return "welcome"
	case TypeBatch:
		return "batch"
	case TypeRoundEnd:
		return "round-end"
	case TypeRoundAck:
		return "round-ack"
	case TypeFinish:
		return "finish"
	case TypeVerify:
		return "verify"
	case TypeError:
		return "error"
	case TypeChallenge:
		return "challenge"
	case TypeAuth:
		return "auth"
	}
	return fmt.Sprintf("type-%d", uint8(t))
}

// ErrMalformed is wrapped by every error about bytes that break the
// protocol (as opposed to I/O errors).
var ErrMalformed = errors.New("malformed frame")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is the CRC-32C the protocol uses for batches and pages.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// MaxBatchFrame is the largest Batch payload for the given page size and
// pages per batch.
func MaxBatchFrame(pageSize, batchPages uint32) int {
	return 8 + int(batchPages)*(PageHeaderBytes+int(pageSize)) + 4
}

// Frame is one decoded frame. Payload is valid until the next Reader.Next.
type Frame struct {
	Type    Type
	Payload []byte
}

// Reader decodes frames from a stream.
type Reader struct {
	r     io.Reader
	limit int
	hdr   [FrameHeaderBytes]byte
	buf   []byte
}

// NewReader returns a Reader that refuses frames with payloads longer than
// limit bytes.
func NewReader(r io.Reader, limit int) *Reader {
	return &Reader{r: r, limit: limit}
}

// SetLimit changes the payload limit (after the handshake fixes the batch
// size).
func (r *Reader) SetLimit(limit int) { r.limit = limit }

// SetBuffer makes the Reader decode into buf: payloads up to cap(buf)
// bytes allocate nothing, so a receiver that owns buf (and counts it in its
// budget) decides where the memory lives and when it is freed.
func (r *Reader) SetBuffer(buf []byte) { r.buf = buf[:0] }

// Next reads the next frame. io.EOF means the stream ended cleanly between
// frames; a stream cut inside a frame is io.ErrUnexpectedEOF.
func (r *Reader) Next() (Frame, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return Frame{}, err
	}
	t := Type(r.hdr[0])
	if t < TypeHello || t > TypeAuth {
		return Frame{}, malformed("unknown frame type %d", uint8(t))
	}
	if r.hdr[1] != 0 || r.hdr[2] != 0 || r.hdr[3] != 0 {
		return Frame{}, malformed("frame header reserved bytes %x are not zero", r.hdr[1:4])
	}
	n := binary.LittleEndian.Uint32(r.hdr[4:])
	if uint64(n) > uint64(r.limit) {
		return Frame{}, malformed("%s frame of %d bytes exceeds the limit of %d", t, n, r.limit)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return Frame{Type: t, Payload: r.buf}, nil
}

// appendHeader appends a frame header for a payload of n bytes.
func appendHeader(b []byte, t Type, n int) []byte {
	b = append(b, byte(t), 0, 0, 0)
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

// Hello opens a session.
type Hello struct {
	// Version is the sender's protocol version.
	Version uint16
	// PageSize is the page size in bytes.
	PageSize uint32
	// Pages is the memory size in pages.
	Pages uint64
	// BatchPages is the most pages any Batch of this session carries.
	BatchPages uint32
	// Token is the shared secret. It never goes on the wire: it keys the
	// MAC of the Auth frame (see AuthMAC).
	Token string
}

// MemoryBytes is the memory the Hello asks the receiver to hold.
func (h Hello) MemoryBytes() uint64 { return h.Pages * uint64(h.PageSize) }

// Check reports a Hello whose numbers no receiver can accept.
func (h Hello) Check() error {
	switch {
	case h.PageSize == 0 || h.PageSize&(h.PageSize-1) != 0 || h.PageSize > MaxPageSize:
		return malformed("hello: page size %d: want a power of two up to %d", h.PageSize, MaxPageSize)
	case h.Pages == 0 || h.Pages > 1<<40:
		return malformed("hello: page count %d: want 1 to 2^40", h.Pages)
	case h.BatchPages == 0 || h.BatchPages > MaxBatchPages:
		return malformed("hello: batch of %d pages: want 1 to %d", h.BatchPages, MaxBatchPages)
	case MaxBatchFrame(h.PageSize, h.BatchPages) > MaxBatchBytes:
		return malformed("hello: batch of %d pages of %d bytes = %d bytes: want at most %d", h.BatchPages, h.PageSize, MaxBatchFrame(h.PageSize, h.BatchPages), MaxBatchBytes)
	}
	return nil
}

// helloVersioned is the part of every version's Hello a receiver reads
// before it knows the layout: magic and version.
const helloVersioned = len(Magic) + 2

// HelloBytes is the Hello payload. It ends with two zero bytes where
// version 1 had its token length, so a version-1 receiver parses it and
// names the version mismatch.
const HelloBytes = helloVersioned + 4 + 8 + 4 + 2

// MaxHelloFrame is the largest handshake payload a receiver reads before
// the sender has authenticated; version 1 senders sent up to 1 KiB of
// token, which must still arrive whole to be told apart.
const MaxHelloFrame = 2048

// AppendHello appends h as a frame. The token is not sent.
func AppendHello(b []byte, h Hello) []byte {
	b = appendHeader(b, TypeHello, HelloBytes)
	return appendHelloPayload(b, h)
}

func appendHelloPayload(b []byte, h Hello) []byte {
	b = append(b, Magic...)
	b = binary.LittleEndian.AppendUint16(b, h.Version)
	b = binary.LittleEndian.AppendUint32(b, h.PageSize)
	b = binary.LittleEndian.AppendUint64(b, h.Pages)
	b = binary.LittleEndian.AppendUint32(b, h.BatchPages)
	return append(b, 0, 0)
}

// ParseHello decodes a Hello payload. A Hello of another version returns
// only its Version (and no error), so the receiver can name the mismatch;
// ParseHello checks the framing only and the receiver decides the rest.
func ParseHello(p []byte) (Hello, error) {
	var h Hello
	if len(p) < helloVersioned {
		return h, malformed("hello of %d bytes: want %d", len(p), HelloBytes)
	}
	if string(p[:len(Magic)]) != Magic {
		return h, malformed("hello does not start with %q: not a microwiper sender", Magic)
	}
	q := p[len(Magic):]
	h.Version = binary.LittleEndian.Uint16(q)
	if h.Version != Version {
		return h, nil
	}
	if len(p) != HelloBytes {
		return h, malformed("hello of %d bytes: want %d", len(p), HelloBytes)
	}
	h.PageSize = binary.LittleEndian.Uint32(q[2:])
	h.Pages = binary.LittleEndian.Uint64(q[6:])
	h.BatchPages = binary.LittleEndian.Uint32(q[14:])
	if q[18] != 0 || q[19] != 0 {
		return h, malformed("hello reserved bytes %x are not zero", q[18:20])
	}
	return h, nil
}

// AppendChallenge appends a Challenge frame: the receiver's fresh nonce.
func AppendChallenge(b []byte, nonce [NonceBytes]byte) []byte {
	b = appendHeader(b, TypeChallenge, NonceBytes)
	return append(b, nonce[:]...)
}

// ParseChallenge decodes a Challenge payload.
func ParseChallenge(p []byte) ([NonceBytes]byte, error) {
	var n [NonceBytes]byte
	if len(p) != NonceBytes {
		return n, malformed("challenge of %d bytes: want %d", len(p), NonceBytes)
	}
	copy(n[:], p)
	return n, nil
}

// AppendAuth appends an Auth frame carrying mac.
func AppendAuth(b []byte, mac [MACBytes]byte) []byte {
	b = appendHeader(b, TypeAuth, MACBytes)
	return append(b, mac[:]...)
}

// ParseAuth decodes an Auth payload.
func ParseAuth(p []byte) ([MACBytes]byte, error) {
	var m [MACBytes]byte
	if len(p) != MACBytes {
		return m, malformed("auth of %d bytes: want %d", len(p), MACBytes)
	}
	copy(m[:], p)
	return m, nil
}

// authLabel separates this MAC from any other use of the same token.
const authLabel = "microwiper auth v2\x00"

// AuthMAC is HMAC-SHA256 keyed by h.Token over the nonce and the Hello's
// payload: only a holder of the token can answer a nonce, a recorded
// answer is useless against the next nonce, and the answer binds the
// session's sizes.
func AuthMAC(h Hello, nonce [NonceBytes]byte) [MACBytes]byte {
	m := hmac.New(sha256.New, []byte(h.Token))
	m.Write([]byte(authLabel))
	m.Write(nonce[:])
	m.Write(appendHelloPayload(nil, h))
	var out [MACBytes]byte
	m.Sum(out[:0])
	return out
}

// CheckAuth reports whether mac answers nonce for h, in constant time.
func CheckAuth(h Hello, nonce [NonceBytes]byte, mac [MACBytes]byte) bool {
	want := AuthMAC(h, nonce)
	return hmac.Equal(want[:], mac[:])
}

// Status is a receiver's answer to a Hello.
type Status uint8

// Welcome statuses.
const (
	StatusOK          Status = 0
	StatusBadVersion  Status = 1
	StatusBadToken    Status = 2
	StatusTooLarge    Status = 3
	StatusMalformed   Status = 4
	StatusUnavailable Status = 5
	StatusBusy        Status = 6
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusBadVersion:
		return "unsupported protocol version"
	case StatusBadToken:
		return "authentication failed"
	case StatusTooLarge:
		return "memory request too large"
	case StatusMalformed:
		return "malformed handshake"
	case StatusUnavailable:
		return "receiver out of memory budget"
	case StatusBusy:
		return "receiver busy"
	}
	return fmt.Sprintf("status %d", uint8(s))
}

// Welcome answers a Hello.
type Welcome struct {
	Status  Status
	Message string
}

// MaxMessageBytes bounds Welcome and Error messages.
const MaxMessageBytes = 4096

// AppendWelcome appends w as a frame.
func AppendWelcome(b []byte, w Welcome) []byte {
	msg := clip(w.Message)
	b = appendHeader(b, TypeWelcome, 1+len(msg))
	b = append(b, byte(w.Status))
	return append(b, msg...)
}

// ParseWelcome decodes a Welcome payload.
func ParseWelcome(p []byte) (Welcome, error) {
	if len(p) < 1 || len(p) > 1+MaxMessageBytes {
		return Welcome{}, malformed("welcome of %d bytes: want 1 to %d", len(p), 1+MaxMessageBytes)
	}
	return Welcome{Status: Status(p[0]), Message: string(p[1:])}, nil
}

func clip(s string) string {
	if len(s) > MaxMessageBytes {
		return s[:MaxMessageBytes]
	}
	return s
}

// AppendError appends an Error frame carrying msg.
func AppendError(b []byte, msg string) []byte {
	msg = clip(msg)
	b = appendHeader(b, TypeError, len(msg))
	return append(b, msg...)
}

// ParseError decodes an Error payload into its message.
func ParseError(p []byte) (string, error) {
	if len(p) > MaxMessageBytes {
		return "", malformed("error message of %d bytes: want at most %d", len(p), MaxMessageBytes)
	}
	return string(p), nil
}

// RoundEnd closes a round: the receiver must have received Pages pages in
// it. Final marks the stop-and-copy round.
type RoundEnd struct {
	Round uint32
	Pages uint64
	Final bool
}

const roundEndBytes = 4 + 8 + 1

// AppendRoundEnd appends e as a frame.
func AppendRoundEnd(b []byte, e RoundEnd) []byte {
	b = appendHeader(b, TypeRoundEnd, roundEndBytes)
	b = binary.LittleEndian.AppendUint32(b, e.Round)
	b = binary.LittleEndian.AppendUint64(b, e.Pages)
	if e.Final {
		return append(b, 1)
	}
	return append(b, 0)
}

// ParseRoundEnd decodes a RoundEnd payload.
func ParseRoundEnd(p []byte) (RoundEnd, error) {
	if len(p) != roundEndBytes {
		return RoundEnd{}, malformed("round-end of %d bytes: want %d", len(p), roundEndBytes)
	}
	if p[12] > 1 {
		return RoundEnd{}, malformed("round-end final flag %d: want 0 or 1", p[12])
	}
	return RoundEnd{
		Round: binary.LittleEndian.Uint32(p),
		Pages: binary.LittleEndian.Uint64(p[4:]),
		Final: p[12] == 1,
	}, nil
}

// RoundAck acknowledges a RoundEnd with the pages the receiver verified and
// wrote in that round.
type RoundAck struct {
	Round uint32
	Pages uint64
}

const roundAckBytes = 4 + 8

// AppendRoundAck appends a as a frame.
func AppendRoundAck(b []byte, a RoundAck) []byte {
	b = appendHeader(b, TypeRoundAck, roundAckBytes)
	b = binary.LittleEndian.AppendUint32(b, a.Round)
	return binary.LittleEndian.AppendUint64(b, a.Pages)
}

// ParseRoundAck decodes a RoundAck payload.
func ParseRoundAck(p []byte) (RoundAck, error) {
	if len(p) != roundAckBytes {
		return RoundAck{}, malformed("round-ack of %d bytes: want %d", len(p), roundAckBytes)
	}
	return RoundAck{Round: binary.LittleEndian.Uint32(p), Pages: binary.LittleEndian.Uint64(p[4:])}, nil
}

// AppendFinish appends a Finish frame: the sender asks for Verify frames.
func AppendFinish(b []byte) []byte { return appendHeader(b, TypeFinish, 0) }

// ParseFinish checks a Finish payload.
func ParseFinish(p []byte) error {
	if len(p) != 0 {
		return malformed("finish of %d bytes: want 0", len(p))
	}
	return nil
}
