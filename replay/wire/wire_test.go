package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	hello := Hello{Version: Version, PageSize: 4096, Pages: 1 << 20, BatchPages: 256}
	nonce := [NonceBytes]byte{1, 2, 3}
	mac := AuthMAC(Hello{Version: Version, PageSize: 4096, Pages: 1 << 20, BatchPages: 256, Token: "s3cret"}, nonce)
	welcome := Welcome{Status: StatusTooLarge, Message: "want 4 GiB, limit 1 GiB"}
	end := RoundEnd{Round: 7, Pages: 123456, Final: true}
	ack := RoundAck{Round: 7, Pages: 123456}

	bb := NewBatchBuilder(64, 4)
	copy(bb.Add(3, 9), bytes.Repeat([]byte{0xab}, 64))
	bb.AddZero(5, 0)
	copy(bb.Add(0, 1), bytes.Repeat([]byte{0x01}, 64))

	var stream []byte
	stream = AppendHello(stream, hello)
	stream = AppendChallenge(stream, nonce)
	stream = AppendAuth(stream, mac)
	stream = AppendWelcome(stream, welcome)
	stream = append(stream, bb.Frame()...)
	stream = AppendRoundEnd(stream, end)
	stream = AppendRoundAck(stream, ack)
	stream = AppendFinish(stream)
	stream = AppendVerify(stream, 10, []uint64{1, 2}, []uint32{0xdeadbeef, 7})
	stream = AppendError(stream, "boom")

	r := NewReader(bytes.NewReader(stream), 1<<20)
	next := func(want Type) []byte {
		t.Helper()
		f, err := r.Next()
		require.NoError(t, err)
		require.Equal(t, want, f.Type)
		return f.Payload
	}
	h, err := ParseHello(next(TypeHello))
	require.NoError(t, err)
	assert.Equal(t, hello, h)
	require.NoError(t, h.Check())
	n, err := ParseChallenge(next(TypeChallenge))
	require.NoError(t, err)
	assert.Equal(t, nonce, n)
	m, err := ParseAuth(next(TypeAuth))
	require.NoError(t, err)
	assert.Equal(t, mac, m)
	w, err := ParseWelcome(next(TypeWelcome))
	require.NoError(t, err)
	assert.Equal(t, welcome, w)
	pages, err := ParseBatch(next(TypeBatch), 64, 8, nil)
	require.NoError(t, err)
	require.Len(t, pages, 3)
	assert.Equal(t, Page{Index: 3, Version: 9, Data: bytes.Repeat([]byte{0xab}, 64)}, pages[0])
	assert.Equal(t, Page{Index: 5, Version: 0, Zero: true}, pages[1])
	assert.Equal(t, Page{Index: 0, Version: 1, Data: bytes.Repeat([]byte{0x01}, 64)}, pages[2])
	e, err := ParseRoundEnd(next(TypeRoundEnd))
	require.NoError(t, err)
	assert.Equal(t, end, e)
	a, err := ParseRoundAck(next(TypeRoundAck))
	require.NoError(t, err)
	assert.Equal(t, ack, a)
	require.NoError(t, ParseFinish(next(TypeFinish)))
	var v Verify
	require.NoError(t, ParseVerify(next(TypeVerify), &v))
	assert.Equal(t, Verify{First: 10, Versions: []uint64{1, 2}, Sums: []uint32{0xdeadbeef, 7}}, v)
	msg, err := ParseError(next(TypeError))
	require.NoError(t, err)
	assert.Equal(t, "boom", msg)
	_, err = r.Next()
	assert.ErrorIs(t, err, io.EOF)
}

func TestBatchBuilderReset(t *testing.T) {
	bb := NewBatchBuilder(8, 2)
	copy(bb.Add(1, 1), "aaaaaaaa")
	bb.Frame()
	bb.Reset()
	assert.Equal(t, 0, bb.Len())
	copy(bb.Add(2, 2), "bbbbbbbb")
	f := bb.Frame()
	assert.Len(t, f, FrameHeaderBytes+MaxBatchFrame(8, 1))
	pages, err := ParseBatch(f[FrameHeaderBytes:], 8, 4, nil)
	require.NoError(t, err)
	require.Len(t, pages, 1)
	assert.Equal(t, "bbbbbbbb", string(pages[0].Data))
}

func TestReaderRejects(t *testing.T) {
	hdr := func(t Type, res byte, n uint32) []byte {
		b := []byte{byte(t), res, 0, 0}
		return binary.LittleEndian.AppendUint32(b, n)
	}
	tests := []struct {
		name  string
		in    []byte
		limit int
		want  string
	}{
		{"unknown type", hdr(99, 0, 0), 100, "unknown frame type 99"},
		{"reserved bytes", hdr(TypeFinish, 1, 0), 100, "reserved bytes"},
		{"oversized", hdr(TypeBatch, 0, 1<<30), 1 << 20, "batch frame of 1073741824 bytes exceeds the limit of 1048576"},
		{"http request", []byte("GET / HTTP/1.1\r\n"), 100, "unknown frame type 71"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tc.in), tc.limit).Next()
			require.ErrorIs(t, err, ErrMalformed)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("cut payload", func(t *testing.T) {
		_, err := NewReader(bytes.NewReader(append(hdr(TypeError, 0, 10), "abc"...)), 100).Next()
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	})
}

func TestParseRejects(t *testing.T) {
	good := NewBatchBuilder(16, 2)
	copy(good.Add(1, 1), "0123456789abcdef")
	batch := append([]byte(nil), good.Frame()[FrameHeaderBytes:]...)
	flipped := append([]byte(nil), batch...)
	flipped[12] ^= 1
	helloPayload := func(h Hello) []byte { return AppendHello(nil, h)[FrameHeaderBytes:] }
	badMagic := helloPayload(Hello{Version: 1, PageSize: 4096, Pages: 1, BatchPages: 1})
	badMagic[0] = 'X'

	tests := []struct {
		name  string
		parse func() error
		want  string
	}{
		{"hello short", func() error { _, err := ParseHello([]byte("micro")); return err }, "hello of 5 bytes"},
		{"hello magic", func() error { _, err := ParseHello(badMagic); return err }, "not a microwiper sender"},
		{"hello length", func() error {
			p := helloPayload(Hello{Version: Version, PageSize: 4096, Pages: 1, BatchPages: 1})
			_, err := ParseHello(p[:len(p)-1])
			return err
		}, "hello of 27 bytes: want 28"},
		{"hello reserved", func() error {
			p := helloPayload(Hello{Version: Version, PageSize: 4096, Pages: 1, BatchPages: 1})
			p[len(p)-1] = 1
			_, err := ParseHello(p)
			return err
		}, "reserved bytes 0001"},
		{"hello batch bytes", func() error { return Hello{PageSize: 1 << 21, Pages: 1, BatchPages: 1024}.Check() }, "want at most 536936448"},
		{"challenge size", func() error { _, err := ParseChallenge(make([]byte, 31)); return err }, "challenge of 31 bytes: want 32"},
		{"auth size", func() error { _, err := ParseAuth(make([]byte, 33)); return err }, "auth of 33 bytes: want 32"},
		{"hello page size", func() error { return Hello{PageSize: 3000, Pages: 1, BatchPages: 1}.Check() }, "page size 3000"},
		{"hello pages", func() error { return Hello{PageSize: 4096, Pages: 0, BatchPages: 1}.Check() }, "page count 0"},
		{"hello batch", func() error { return Hello{PageSize: 4096, Pages: 1, BatchPages: 0}.Check() }, "batch of 0 pages"},
		{"batch checksum", func() error { _, err := ParseBatch(flipped, 16, 4, nil); return err }, "corrupted in transit"},
		{"batch index", func() error { _, err := ParseBatch(batch, 16, 1, nil); return err }, "index 1 outside [0, 1)"},
		{"batch page size", func() error { _, err := ParseBatch(batch, 32, 4, nil); return err }, "content bytes, want 32"},
		{"batch short", func() error { _, err := ParseBatch([]byte{1, 2}, 16, 4, nil); return err }, "batch of 2 bytes"},
		{"round-end size", func() error { _, err := ParseRoundEnd([]byte{1}); return err }, "round-end of 1 bytes"},
		{"round-end flag", func() error { _, err := ParseRoundEnd(make13(2)); return err }, "final flag 2"},
		{"round-ack size", func() error { _, err := ParseRoundAck(nil); return err }, "round-ack of 0 bytes"},
		{"finish size", func() error { return ParseFinish([]byte{0}) }, "finish of 1 bytes"},
		{"welcome empty", func() error { _, err := ParseWelcome(nil); return err }, "welcome of 0 bytes"},
		{"verify count", func() error {
			p := AppendVerify(nil, 0, []uint64{1}, []uint32{1})[FrameHeaderBytes:]
			return ParseVerify(p[:len(p)-1], &Verify{})
		}, "verify claims 1 pages in 11 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse()
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrMalformed), "%v does not wrap ErrMalformed", err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestHelloVersions checks that version 1 and 2 peers tell each other the
// mismatch: a version-1 Hello (token in clear) parses to its version
// alone, and a version-2 Hello has the length a version-1 receiver reads
// as an empty token.
func TestHelloVersions(t *testing.T) {
	v1 := []byte(Magic)
	v1 = binary.LittleEndian.AppendUint16(v1, 1)
	v1 = binary.LittleEndian.AppendUint32(v1, 4096)
	v1 = binary.LittleEndian.AppendUint64(v1, 1)
	v1 = binary.LittleEndian.AppendUint32(v1, 1)
	v1 = binary.LittleEndian.AppendUint16(v1, 6)
	v1 = append(v1, "s3cret"...)
	h, err := ParseHello(v1)
	require.NoError(t, err)
	assert.Equal(t, Hello{Version: 1}, h)

	v2 := AppendHello(nil, Hello{Version: Version, PageSize: 4096, Pages: 1, BatchPages: 1, Token: "s3cret"})[FrameHeaderBytes:]
	assert.NotContains(t, string(v2), "s3cret", "the token must not cross the wire")
	assert.Equal(t, []byte{0, 0}, v2[len(v2)-2:], "version 1's token length: zero")
	assert.Len(t, v2, len(Magic)+2+4+8+4+2)
}

// TestAuthMAC checks what the challenge-response is for: only the token
// answers, a recorded answer does not answer another nonce, and the
// answer binds the Hello's sizes.
func TestAuthMAC(t *testing.T) {
	h := Hello{Version: Version, PageSize: 4096, Pages: 1 << 10, BatchPages: 256, Token: "sesame"}
	n1, n2 := [NonceBytes]byte{1}, [NonceBytes]byte{2}
	mac := AuthMAC(h, n1)
	assert.True(t, CheckAuth(h, n1, mac))
	assert.False(t, CheckAuth(h, n2, mac), "a recorded answer must not answer a new nonce")
	wrong := h
	wrong.Token = "sesamf"
	assert.False(t, CheckAuth(wrong, n1, mac), "another token must not answer")
	bigger := h
	bigger.Pages = 1 << 30
	assert.False(t, CheckAuth(bigger, n1, mac), "the answer must bind the sizes")
	empty := h
	empty.Token = ""
	assert.True(t, CheckAuth(empty, n1, AuthMAC(empty, n1)), "an empty token is a key like any other")
	assert.False(t, CheckAuth(empty, n1, mac))
}

func make13(flag byte) []byte {
	p := make([]byte, roundEndBytes)
	p[12] = flag
	return p
}

// FuzzReader feeds arbitrary bytes through the frame reader and every
// parser: nothing may panic, and whatever parses must encode back to the
// same bytes.
func FuzzReader(f *testing.F) {
	f.Add(AppendHello(nil, Hello{Version: Version, PageSize: 4096, Pages: 3, BatchPages: 2, Token: "t"}))
	f.Add(AppendAuth(AppendChallenge(nil, [NonceBytes]byte{9}), [MACBytes]byte{7}))
	bb := NewBatchBuilder(8, 2)
	copy(bb.Add(1, 2), "abcdefgh")
	bb.AddZero(0, 0)
	f.Add(bb.Frame())
	f.Add(AppendRoundEnd(AppendFinish(nil), RoundEnd{Round: 1, Pages: 2}))
	f.Add(AppendVerify(AppendRoundAck(nil, RoundAck{Round: 1}), 0, []uint64{1}, []uint32{2}))
	f.Add(AppendError(AppendWelcome(nil, Welcome{Message: "x"}), "e"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), 1<<16)
		for {
			fr, err := r.Next()
			if err != nil {
				return
			}
			p := fr.Payload
			switch fr.Type {
			case TypeHello:
				if h, err := ParseHello(p); err == nil && h.Version == Version {
					_ = h.Check()
					sameBytes(t, p, AppendHello(nil, h)[FrameHeaderBytes:])
				}
			case TypeChallenge:
				if n, err := ParseChallenge(p); err == nil {
					sameBytes(t, p, AppendChallenge(nil, n)[FrameHeaderBytes:])
				}
			case TypeAuth:
				if m, err := ParseAuth(p); err == nil {
					sameBytes(t, p, AppendAuth(nil, m)[FrameHeaderBytes:])
				}
			case TypeWelcome:
				if w, err := ParseWelcome(p); err == nil {
					sameBytes(t, p, AppendWelcome(nil, w)[FrameHeaderBytes:])
				}
			case TypeBatch:
				if pages, err := ParseBatch(p, 8, 1<<20, nil); err == nil {
					b := NewBatchBuilder(8, len(pages))
					for _, pg := range pages {
						if pg.Zero {
							b.AddZero(pg.Index, pg.Version)
						} else {
							copy(b.Add(pg.Index, pg.Version), pg.Data)
						}
					}
					sameBytes(t, p, b.Frame()[FrameHeaderBytes:])
				}
			case TypeRoundEnd:
				if e, err := ParseRoundEnd(p); err == nil {
					sameBytes(t, p, AppendRoundEnd(nil, e)[FrameHeaderBytes:])
				}
			case TypeRoundAck:
				if a, err := ParseRoundAck(p); err == nil {
					sameBytes(t, p, AppendRoundAck(nil, a)[FrameHeaderBytes:])
				}
			case TypeFinish:
				_ = ParseFinish(p)
			case TypeVerify:
				var v Verify
				if err := ParseVerify(p, &v); err == nil {
					sameBytes(t, p, AppendVerify(nil, v.First, v.Versions, v.Sums)[FrameHeaderBytes:])
				}
			case TypeError:
				if msg, err := ParseError(p); err == nil {
					sameBytes(t, p, AppendError(nil, msg)[FrameHeaderBytes:])
				}
			}
		}
	})
}

func sameBytes(t *testing.T, want, got []byte) {
	t.Helper()
	if !bytes.Equal(want, got) {
		t.Fatalf("re-encoded payload differs:\nwant %x\ngot  %x", want, got)
	}
}
