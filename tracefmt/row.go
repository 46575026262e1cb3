package tracefmt

// row is the on-disk shape of one trace row. Delta encoding keeps sorted
// times and pages to a few bits a row; see doc.go for the layout.
type row struct {
	TNS    int64 `parquet:"t_ns,delta"`
	Page   int64 `parquet:"page,delta"`
	Writes int32 `parquet:"writes,delta"`
}

// zeroRow is row with the optional zero column, written by a Writer made
// with WriterOptions.ZeroWrites. Rows are buffered in this shape either way.
type zeroRow struct {
	TNS    int64 `parquet:"t_ns,delta"`
	Page   int64 `parquet:"page,delta"`
	Writes int32 `parquet:"writes,delta"`
	Zero   bool  `parquet:"zero"`
}

// Column names, as stored in the Parquet schema.
const (
	ColumnTNS    = "t_ns"
	ColumnPage   = "page"
	ColumnWrites = "writes"
	ColumnZero   = "zero"
)

// Epoch is the pages observed written in one epoch, or the initial image.
type Epoch struct {
	// TNS is the epoch's time in ns since the trace start (0 for the
	// initial image).
	TNS int64
	// Pages lists the pages, ascending and unique, each below Header.Pages.
	Pages []int64
	// Writes is parallel to Pages: writes seen per page in the epoch, 1 when
	// unknown, 0 in the initial image.
	Writes []int32
	// Zero is parallel to Pages when the trace has the zero column (nil
	// otherwise): the page held only zeros at the end of the epoch, as
	// checked by content. Always false in the initial image.
	Zero []bool
	// Initial marks the initial image: the pages that held data when the
	// capture began (rows with t_ns = 0 and writes = 0).
	Initial bool
}

// Scanner is anything that yields a trace's epochs the way Reader does: a
// file on disk, or a synthetic generator that never touches disk.
type Scanner interface {
	// Header returns the trace's metadata.
	Header() Header
	// Scan advances to the next epoch, the initial image first.
	Scan() bool
	// Epoch returns the current epoch, valid until the next Scan.
	Epoch() Epoch
	// Err returns the first error, nil after a clean end.
	Err() error
}

var _ Scanner = (*Reader)(nil)
