package tracefmt

import (
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
)

// int64Cursor walks one INT64 column across column chunks, one decoded page
// at a time. vals[pos:] are the values not yet consumed.
type int64Cursor struct {
	chunks  []parquet.ColumnChunk
	next    int
	pages   parquet.Pages
	page    parquet.Page
	vals    []int64
	pos     int
	scratch []int64
	values  []parquet.Value
}

// fill returns how many values are ready, loading pages as needed; 0 means
// the column is exhausted.
func (c *int64Cursor) fill() (int, error) {
	for c.pos == len(c.vals) {
		page, err := nextPage(&c.chunks, &c.next, &c.pages, &c.page)
		if err != nil || page == nil {
			return 0, err
		}
		c.vals, c.pos = nil, 0
		if page.Dictionary() == nil && page.NumNulls() == 0 && page.Type().Kind() == parquet.Int64 {
			// Fast path: the decoded page buffer is used in place.
			data := page.Data()
			c.vals = data.Int64()
			if int64(len(c.vals)) == page.NumValues() {
				continue
			}
		}
		c.vals, err = slowInt64s(page, &c.values, c.scratch[:0])
		if err != nil {
			return 0, err
		}
		c.scratch = c.vals
	}
	return len(c.vals) - c.pos, nil
}

func (c *int64Cursor) close() { closePages(&c.pages, &c.page) }

// int32Cursor is int64Cursor for the INT32 writes column.
type int32Cursor struct {
	chunks  []parquet.ColumnChunk
	next    int
	pages   parquet.Pages
	page    parquet.Page
	vals    []int32
	pos     int
	scratch []int32
	values  []parquet.Value
}

func (c *int32Cursor) fill() (int, error) {
	for c.pos == len(c.vals) {
		page, err := nextPage(&c.chunks, &c.next, &c.pages, &c.page)
		if err != nil || page == nil {
			return 0, err
		}
		c.vals, c.pos = nil, 0
		if page.Dictionary() == nil && page.NumNulls() == 0 && page.Type().Kind() == parquet.Int32 {
			data := page.Data()
			c.vals = data.Int32()
			if int64(len(c.vals)) == page.NumValues() {
				continue
			}
		}
		wide, err := slowInt64s(page, &c.values, nil)
		if err != nil {
			return 0, err
		}
		c.vals = c.scratch[:0]
		for _, v := range wide {
			c.vals = append(c.vals, int32(v))
		}
		c.scratch = c.vals
	}
	return len(c.vals) - c.pos, nil
}

func (c *int32Cursor) close() { closePages(&c.pages, &c.page) }

// boolCursor is int64Cursor for the BOOLEAN zero column. Parquet stores
// booleans bit-packed (or RLE): they are decoded through the generic
// values, which the zero column's rarity on disk makes cheap enough.
type boolCursor struct {
	chunks []parquet.ColumnChunk
	next   int
	pages  parquet.Pages
	page   parquet.Page
	vals   []bool
	pos    int
	values []parquet.Value
}

func (c *boolCursor) fill() (int, error) {
	for c.pos == len(c.vals) {
		page, err := nextPage(&c.chunks, &c.next, &c.pages, &c.page)
		if err != nil || page == nil {
			return 0, err
		}
		c.vals, c.pos = c.vals[:0], 0
		n := int(page.NumValues())
		if cap(c.values) < n {
			c.values = make([]parquet.Value, n)
		}
		vals := c.values[:n]
		got, err := page.Values().ReadValues(vals)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for _, v := range vals[:got] {
			if v.IsNull() {
				return 0, errors.New("null value: trace columns may not hold nulls")
			}
			if v.Kind() != parquet.Boolean {
				return 0, fmt.Errorf("value of kind %v in the boolean column", v.Kind())
			}
			c.vals = append(c.vals, v.Boolean())
		}
	}
	return len(c.vals) - c.pos, nil
}

func (c *boolCursor) close() { closePages(&c.pages, &c.page) }

// nextPage releases the current page and reads the next one, moving on to
// the next column chunk at the end of one. It returns nil at the end.
func nextPage(chunks *[]parquet.ColumnChunk, next *int, pages *parquet.Pages, cur *parquet.Page) (parquet.Page, error) {
	if *cur != nil {
		parquet.Release(*cur)
		*cur = nil
	}
	for {
		if *pages == nil {
			if *next == len(*chunks) {
				return nil, nil
			}
			*pages = (*chunks)[*next].Pages()
			*next++
		}
		page, err := (*pages).ReadPage()
		if err == nil {
			if page.NumValues() == 0 {
				parquet.Release(page)
				continue
			}
			*cur = page
			return page, nil
		}
		(*pages).Close()
		*pages = nil
		if !errors.Is(err, io.EOF) {
			return nil, err
		}
	}
}

func closePages(pages *parquet.Pages, cur *parquet.Page) {
	if *cur != nil {
		parquet.Release(*cur)
		*cur = nil
	}
	if *pages != nil {
		(*pages).Close()
		*pages = nil
	}
}

// slowInt64s decodes any integer page (dictionary-encoded, nullable, or of
// another width) through parquet-go's generic values. Foreign writers need
// it; our own files never take this path.
func slowInt64s(page parquet.Page, buf *[]parquet.Value, dst []int64) ([]int64, error) {
	n := int(page.NumValues())
	if cap(*buf) < n {
		*buf = make([]parquet.Value, n)
	}
	vals := (*buf)[:n]
	got, err := page.Values().ReadValues(vals)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	for _, v := range vals[:got] {
		if v.IsNull() {
			return nil, errors.New("null value: trace columns may not hold nulls")
		}
		switch v.Kind() {
		case parquet.Int32:
			dst = append(dst, int64(v.Int32()))
		case parquet.Int64:
			dst = append(dst, v.Int64())
		default:
			return nil, fmt.Errorf("value of kind %v in an integer column", v.Kind())
		}
	}
	return dst, nil
}
