// Package tracefmt defines microwiper's page-write trace format, trace/v1,
// and reads, writes and validates it.
//
// # Format
//
// A trace is one Parquet file, or a directory of Parquet files that read as
// one trace: every *.parquet file in name order (Spark's part-00000-….parquet,
// DuckDB's data_0.parquet), our own segments seg-000000.parquet,
// seg-000001.parquet, … in number order. Hidden files and files starting
// with "_" are ignored. Files still being written carry a .partial suffix and
// are ignored by readers: a writer killed mid-way loses only its open segment.
// Any valid Parquet encoding and codec is read (dictionary or plain pages,
// snappy, zstd, gzip, …; nullable columns without nulls; row groups of any
// size); an epoch may span two files.
//
// Each row says that a page was observed written in one epoch:
//
//	column  type                         meaning
//	t_ns    INT64, DELTA_BINARY_PACKED   ns since trace start when the write was observed
//	page    INT64, DELTA_BINARY_PACKED   page index in the dense page space [0, pages)
//	writes  INT32, DELTA_BINARY_PACKED   writes seen to that page in that epoch; 1 when unknown
//	zero    BOOLEAN (optional column)    the page held only zeros at the end of the epoch
//
// The columns are flat and required; writes may be absent in files made by
// other tools, and then reads as 1. The zero column is optional too: a
// trace without it (every trace before it existed, any other writer, a
// capture without --zero-writes) reads as zero = false throughout, and
// its presence says that every written page's content was checked. A page
// whose row has zero = true is a zero page again from that write on, until
// a later row without it: a migration that looks at content (QEMU) sends it
// as a header. Initial-image rows must have zero = false. Pages are zstd-compressed. Rows are
// sorted by (t_ns, page) with no duplicate (t_ns, page).
//
// Rows with t_ns = 0 and writes = 0 list the initial image: the pages that
// held data when the capture began (capture checks their content, 4 KiB at
// a time, so an all-zero page is left out even when a huge page backs it).
// A page in neither the initial image nor
// any earlier write is a zero page. A trace without initial-image rows
// treats every page as holding data.
//
// The file's key-value metadata holds:
//
//	microwiper.format  trace/v1
//	page_size          page size in bytes
//	pages              memory size in pages; untouched pages count too
//	epoch_ns           capture epoch: row (t, p) means p was written in (t-epoch_ns, t]
//	backend            uffd-wp-async, uffd-wp-sync, soft-dirty or synthetic
//	workload           command line of the traced process
//	kernel             kernel release of the capture host
//	started_at         RFC 3339 wall-clock start of the capture
//	guest_slowdown     optional: how many times slower than hardware the traced
//	                   guest ran (a float in [0.01, 1e6]; absent: unknown), for
//	                   replay --speed guest
//	regions            JSON list of {first_page, pages, start_addr, perms, path,
//	                   and for process trees pid, comm, object, offset, exit_ns;
//	                   a whole-VM capture adds ram_block, QEMU's RAM block
//	                   name, and ram_offset, its ram_addr_t offset}
//	microwiper.finished true in the footer the writer's Close wrote; false in
//	                   segments finished before it. A directory whose last
//	                   file says false was cut short (a killed capture): its
//	                   rows are valid, and validate and info say it is
//	                   unfinished. Files without the key (other writers)
//	                   count as finished. A one-file trace is renamed into
//	                   place only once whole, so it is never unfinished.
//
// In a segmented trace every segment carries the metadata as it stood when
// the segment was finished; the last segment's is the trace's, and the
// others must agree with it on page_size, epoch_ns and backend, with pages
// never shrinking.
//
// Any Parquet tool reads a trace. With DuckDB:
//
//	SELECT t_ns / 1e9 AS s, count(*) FROM 'trace.parquet' GROUP BY s ORDER BY s;
//
// # Reading
//
// Reader streams epochs in time order, decoding one Parquet page per column
// at a time, so its memory is bounded by the largest epoch whatever the
// trace size. It checks every row invariant as it goes and stops at the
// first broken one with a *Violation naming the row. Files are opened
// defensively: framing and chunk bounds are checked before parquet-go
// parses them, and a panic inside the library becomes an error.
package tracefmt
