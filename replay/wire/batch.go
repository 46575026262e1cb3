package wire

import (
	"encoding/binary"
)

// batchFixed is a Batch payload's count and reserved word; the CRC follows
// the entries.
const batchFixed = 8

// BatchBuilder assembles one Batch frame in place, so a sender copies each
// page from its memory straight into the frame it writes.
type BatchBuilder struct {
	buf      []byte
	pageSize int
	count    int
}

// NewBatchBuilder returns a builder for batches of up to maxPages pages of
// pageSize bytes.
func NewBatchBuilder(pageSize, maxPages int) *BatchBuilder {
	b := &BatchBuilder{
		buf:      make([]byte, 0, FrameHeaderBytes+MaxBatchFrame(uint32(pageSize), uint32(maxPages))),
		pageSize: pageSize,
	}
	b.Reset()
	return b
}

// Reset empties the batch.
func (b *BatchBuilder) Reset() {
	b.buf = b.buf[:FrameHeaderBytes+batchFixed]
	b.count = 0
}

// Len is the number of pages in the batch.
func (b *BatchBuilder) Len() int { return b.count }

// Add appends a page header and returns the page-size slice the caller
// must fill with the page's content before the next call.
func (b *BatchBuilder) Add(page, version uint64) []byte {
	b.buf = binary.LittleEndian.AppendUint64(b.buf, page)
	b.buf = binary.LittleEndian.AppendUint64(b.buf, version)
	n := len(b.buf)
	b.buf = b.buf[:n+b.pageSize]
	b.count++
	return b.buf[n:]
}

// AddZero appends a zero page: a header without content.
func (b *BatchBuilder) AddZero(page, version uint64) {
	b.buf = binary.LittleEndian.AppendUint64(b.buf, page|zeroFlag)
	b.buf = binary.LittleEndian.AppendUint64(b.buf, version)
	b.count++
}

// Frame finishes the batch and returns the whole frame, valid until the
// next Reset.
func (b *BatchBuilder) Frame() []byte {
	payload := len(b.buf) - FrameHeaderBytes + 4
	appendHeader(b.buf[:0], TypeBatch, payload)
	binary.LittleEndian.PutUint32(b.buf[FrameHeaderBytes:], uint32(b.count))
	binary.LittleEndian.PutUint32(b.buf[FrameHeaderBytes+4:], 0)
	sum := Checksum(b.buf[FrameHeaderBytes:])
	return binary.LittleEndian.AppendUint32(b.buf, sum)
}

// Page is one page of a decoded Batch.
type Page struct {
	// Index is the page's index in [0, pages).
	Index uint64
	// Version counts the writes the source applied to the page.
	Version uint64
	// Zero marks a page sent as header only; Data is nil.
	Zero bool
	// Data is the page's content, a slice of the frame's payload.
	Data []byte
}

// ParseBatch decodes a Batch payload into dst (reused) after checking its
// CRC, its length and that every page index is below pages.
func ParseBatch(p []byte, pageSize uint32, pages uint64, dst []Page) ([]Page, error) {
	dst = dst[:0]
	if len(p) < batchFixed+4 {
		return dst, malformed("batch of %d bytes: want at least %d", len(p), batchFixed+4)
	}
	body, tail := p[:len(p)-4], p[len(p)-4:]
	if got, want := Checksum(body), binary.LittleEndian.Uint32(tail); got != want {
		return dst, malformed("batch checksum %08x, want %08x: corrupted in transit", got, want)
	}
	count := binary.LittleEndian.Uint32(body)
	if r := binary.LittleEndian.Uint32(body[4:]); r != 0 {
		return dst, malformed("batch reserved word %d is not zero", r)
	}
	q := body[batchFixed:]
	if uint64(count)*PageHeaderBytes > uint64(len(q)) {
		return dst, malformed("batch claims %d pages in %d bytes", count, len(q))
	}
	for i := uint32(0); i < count; i++ {
		if len(q) < PageHeaderBytes {
			return dst, malformed("batch page %d of %d: header cut short", i, count)
		}
		idx := binary.LittleEndian.Uint64(q)
		pg := Page{Index: idx &^ zeroFlag, Version: binary.LittleEndian.Uint64(q[8:]), Zero: idx&zeroFlag != 0}
		q = q[PageHeaderBytes:]
		if pg.Index >= pages {
			return dst, malformed("batch page %d of %d: index %d outside [0, %d)", i, count, pg.Index, pages)
		}
		if !pg.Zero {
			if len(q) < int(pageSize) {
				return dst, malformed("batch page %d of %d (index %d): %d content bytes, want %d", i, count, pg.Index, len(q), pageSize)
			}
			pg.Data = q[:pageSize:pageSize]
			q = q[pageSize:]
		}
		dst = append(dst, pg)
	}
	if len(q) != 0 {
		return dst, malformed("batch of %d pages has %d trailing bytes", count, len(q))
	}
	return dst, nil
}

// Verify is one Verify frame: versions and CRC-32Cs of the consecutive
// pages starting at First.
type Verify struct {
	First    uint64
	Versions []uint64
	Sums     []uint32
}

const verifyFixed = 8 + 4

// MaxVerifyFrame is the largest Verify payload.
const MaxVerifyFrame = verifyFixed + MaxVerifyPages*verifyEntryBytes

// AppendVerify appends a Verify frame for pages first, first+1, ….
func AppendVerify(b []byte, first uint64, versions []uint64, sums []uint32) []byte {
	b = appendHeader(b, TypeVerify, verifyFixed+len(versions)*verifyEntryBytes)
	b = binary.LittleEndian.AppendUint64(b, first)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(versions)))
	for i, v := range versions {
		b = binary.LittleEndian.AppendUint64(b, v)
		b = binary.LittleEndian.AppendUint32(b, sums[i])
	}
	return b
}

// ParseVerify decodes a Verify payload into v (its slices are reused).
func ParseVerify(p []byte, v *Verify) error {
	v.Versions, v.Sums = v.Versions[:0], v.Sums[:0]
	if len(p) < verifyFixed {
		return malformed("verify of %d bytes: want at least %d", len(p), verifyFixed)
	}
	v.First = binary.LittleEndian.Uint64(p)
	n := binary.LittleEndian.Uint32(p[8:])
	q := p[verifyFixed:]
	if n > MaxVerifyPages || uint64(len(q)) != uint64(n)*verifyEntryBytes {
		return malformed("verify claims %d pages in %d bytes", n, len(q))
	}
	for ; len(q) > 0; q = q[verifyEntryBytes:] {
		v.Versions = append(v.Versions, binary.LittleEndian.Uint64(q))
		v.Sums = append(v.Sums, binary.LittleEndian.Uint32(q[8:]))
	}
	return nil
}
