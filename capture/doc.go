// Package capture records page-write traces from real, unmodified processes.
//
// A Tracker follows memory with one backend and, each epoch, reports which
// pages were written since the previous epoch, as indexes in a dense page
// space that stays stable for the whole trace (see Index). Record drives a
// Tracker in epochs and writes a tracefmt trace.
//
// What is captured is a process tree by default: a launched command or an
// attached process (Target.PID) and every process it forks or execs, or
// every process of a cgroup v2 directory (Target.Cgroup), including those
// that join later. Options.NoFollow keeps to the one process. The follower
// (follow_linux.go) keeps the tree under PTRACE_SEIZE with the fork, vfork,
// clone, exec and exit events, and explains why ptrace was chosen: a child
// is registered before its first instruction, an exec'd program before
// its first instruction, and a process about to exit is scanned a last
// time, so even a compiler living a few milliseconds leaves its writes.
// Between events the processes run free.
//
// Page space of a tree: each address space (a process from its start or
// exec to its exit or next exec) gets its own indexes for its private
// memory, except what a forked child inherits: one index stands for one
// physical page, as the kernel's copy-on-write has it (cow_linux.go).
// A forked child's private pages that held data at the fork are its
// parent's pages, with no index and no row of their own. The first write
// to a page still shared, by either side, gives the writer's page a new
// index in the writer's regions, with the write row; the other side keeps
// the old index, with no row: its content did not change, and a migration
// sends it once under the old index, which the initial image or an
// earlier row already marks as holding data. (Keeping the parent on the
// old index and giving the child's unchanged copy a new one would need a
// row at a time it was not written, since a page with no row is a zero
// page, and would make the parent's writes show as the child's.) A page
// left with an index another process had first is given a new one when
// it is next written, never written in place, so rows always fall in the
// writer's regions; a page shared at fork counts in the regions of the
// process that had it first, and as freed when that process ends, though
// a child may map it still. A page leaving a shared index goes back,
// when it can, to an index of its own at that address that no process
// maps any more (its first one, or the last it was given): a server that
// forks a child for each background save takes turns between two indexes
// per page it writes during saves, and its page space and regions do not
// grow with the number of saves. The parent is scanned at the fork, so that
// its writes from before the fork land on the shared page. A page the
// child reads in after the fork (a file page) has no index until written.
// Processes found already running when a capture attaches (--pid, a
// cgroup), and exec'd programs, share nothing: their pages are their own.
// Shared memory objects (shared anonymous memory,
// SysV and POSIX shm, memfd: writable shared mappings of in-memory file
// systems) are indexed by object and offset, so a shared page is one page
// however many processes map or write it. Each region of the trace's
// regions metadata names its process (pid, comm) or its shared object,
// and, when its address space ended during the capture, the time it did
// (exit_ns): its pages are never written again and its memory counts as
// freed from then on. A migration still sends such pages once, as every
// page of the page space: the page space is the union of all the memory
// the tree held, and a replay that dropped freed pages would need a
// notion of memory shrinking that the trace format does not have. A new
// process's own pages present when it is registered (loaded at exec, or
// found when attaching) count as written in that epoch: they are new
// content to a migration's destination.
//
// Backends (tracefmt.Backend* names). With none named, SelectBackend takes
// the best the running kernel offers: uffd-wp-async, else soft-dirty, else
// uffd-wp-sync (README.md has the kernel matrix and every difference):
//
//   - uffd-wp-async: userfaultfd write protection in asynchronous
//     mode (UFFD_FEATURE_WP_ASYNC, UFFD_FEATURE_WP_UNPOPULATED). A write to a
//     protected page is resolved inside the kernel, which only clears the
//     page's protection bit; each epoch one PAGEMAP_SCAN ioctl on
//     /proc/PID/pagemap lists the pages whose bit is clear (written) and
//     protects them again. The target never stops, so this is the cheapest.
//   - uffd-wp-sync: the same registration without WP_ASYNC. The first write to
//     a page in an epoch blocks the writing thread until our fault handler
//     has recorded it with its exact time and unprotected the page. Row times
//     are fault times, not epoch ends. Slower; exact. The kernel lets this
//     mode protect anonymous memory only: file-backed private mappings (a
//     binary's .data) are left out (logged with -v).
//     Before Linux 6.7 it runs without PAGEMAP_SCAN (pagemap reads) and
//     before 6.4 without WP_UNPOPULATED (first touches found by presence).
//   - soft-dirty: clear_refs 4 and bit 55 of /proc/PID/pagemap, for kernels
//     built with CONFIG_MEM_SOFT_DIRTY. Detected at run time. The target is
//     stopped while a scan reads and clears the bits, which the kernel
//     cannot do atomically.
//
// The userfaultfd must belong to the target's address space, so it is
// created inside the target: the tracer stops one thread with ptrace, makes
// it run userfaultfd(), copies the descriptor out with pidfd_getfd, makes it
// close() its own copy, restores the thread's registers exactly and detaches.
// From then on every ioctl acts on the target's memory through our copy; if
// the capture dies, the kernel drops the registration with the descriptor and
// the target runs on unharmed. A launched command gets the same injection at
// its first instruction after exec.
//
// Which memory is captured: private writable mappings (heap, stacks, anonymous
// mmap, a binary's data) and writable shared memory objects, narrowed by a
// Filter. Shared mappings of disk files (written back to the file, not
// migrated) and the kernel's [vdso], [vvar] and [vsyscall] are not
// captured. The sync backend cannot protect SysV shm segments (the kernel
// allows synchronous write protection on anonymous and shmem mappings, and
// SysV segments have operations of their own): it leaves them out.
//
// A whole VM (Filter.Ranges, from QEMU): QEMU's RAM blocks are asked for
// over QMP (HMP "info ramblock") and located in QEMU's address space by
// their mappings (see locateRAMBlocks); exactly their used lengths are
// captured, laid out in QEMU's migration order, each region named after its
// block with its RAM offset. QEMU's own heap and its TCG translation buffer
// (a large rwx mapping that --min-region alone would take for guest RAM)
// are never captured.
//
// The initial image is checked for content: a present page that holds only
// zeros is left out (Options.KeepZeroPages keeps it), so a trace's zero
// pages are what a content-checking migration (QEMU) sends as headers, even
// where a transparent huge page makes all 512 of its pages present. The
// check reads every present page once through /proc/PID/mem, before the
// first epoch; measured on a loaded 2-core VM (load average 12-15): redis
// with 126k keys, 23,228 present pages, 59-139 ms (105 zero pages left
// out); sqlite3 holding a 400k-row table, 17,259 pages, 76-209 ms (2); a
// 4 GiB TCG guest with 3.2 GiB written, 833,634 pages, 0.89-1.11 s
// (28,673), about 3 GB/s.
//
// Writes back to zeros (Options.ZeroWrites, capture --zero-writes): after
// every scan, each page the scan reported written is read, read-only, and
// marked in the trace's zero column when it holds only zeros (freed memory
// the kernel zeroed, a calloc'd buffer, a cleared cache: QEMU sends such a
// page as a header). The read comes after the scan protected the pages
// again, so a write racing with it is reported in the next epoch and read
// again there: a page's last row says what it holds. process_vm_readv
// reads the first 64 bytes of up to 1024 pages per call and the whole page
// only where those are zero (a data page rarely starts with 64 zero
// bytes); where the call is refused, /proc/PID/mem. The check works
// wherever the initial image's does: attached, launched, process trees
// (each region's process) and whole VMs. It costs about 0.7-1.5 µs a
// written page (scripts/zerocost, 2-core VM, load average 1.4-4.8): a
// 4 GiB TCG guest rewriting 31,000 pages an epoch spent 22 ms of each
// 100 ms epoch on it and the capture's CPU time over 15 s went from 1.7 s
// to 4.6 s; at 40,000 pages an epoch, 50-67 ms, which stretched the
// epochs to 110-120 ms; redis under redis-benchmark (4,000 pages an
// epoch), 13-16 ms an epoch, 1.1-1.3 s to 1.9-2.0 s. Hence opt-in.
//
// Meaning of a row, beyond the trace format's:
//   - New mappings are found from /proc/PID/maps at every epoch and
//     registered. Writes made to a mapping before it was registered cannot be
//     seen, so every page already present when it is registered counts as
//     written in that epoch.
//   - A page discarded with MADV_DONTNEED (or MADV_FREE, once reclaimed) loses
//     its content: it reads back as zeros, a change the destination of a
//     migration must learn. The async backend reports it as written at the
//     next scan when the kernel does; the trace keeps that meaning.
//   - Unmapped ranges stop being observed; their dense pages stay in the page
//     space (indexes never move), and a later mapping at the same address
//     reuses them.
//   - A write to a protected transparent huge page splits it, so the trace
//     stays at base-page (4 KiB) granularity.
//
// Limits: a multi-threaded parent's other threads run on while one forks;
// a page they write between the fork and the parent's scan at the fork
// stop counts as written before the fork (on the page the child shares).
// A shared page unmapped by one side stays shared until the other writes
// it. With NoFollow, an attached process that calls execve gets a new
// address space the descriptor does not cover, and its capture ends. Writes
// an address space makes between its last scan and an exec are lost (the
// exec event comes after the old memory is gone). The soft-dirty backend
// follows one process only. The async backend notices a mapping unmapped and mapped again at the same
// address between two epochs (PAGEMAP_SCAN refuses the unregistered
// range) and registers it anew; the sync backend cannot tell, and misses
// writes to such a mapping.
//
// Cost: the target pays one protection fault per page it writes per epoch
// (plus, in sync mode, a round trip to our handler); the tracer pays one
// PAGEMAP_SCAN walk per epoch and process. Following a tree adds, per
// fork or exec, a few ptrace stops and an injection, and one stop per
// exit and per signal (BenchmarkForkLoop); per fork, a scan of the parent
// and a map entry in parent and child for each inherited page that held
// data (about 100 bytes a page while the child lives; the parent's go
// when no child shares the page any more), plus 4 bytes per index of the
// page space up to the highest shared one; per page written while a
// process shares pages, a map lookup and an array read:
// BenchmarkScanShared measured 400-440 ns of tracer CPU per reported page
// with sharing against 290-320 ns with each child's pages its own (as
// before sharing), on a loaded machine (load 12-13). A process writing
// pages scattered over memory it shares (redis during a background save)
// moves each to a new index, and each run of moved pages is one more
// region in the metadata: 11,851 regions (1.3 MB of metadata in every
// segment) in the shipped redis trace.
//
// Safety: Record refuses PID 1, its own process and its ancestors, kernel
// threads and zombies; checks the output before it starts anything; gives a
// launched command a parent-death signal (SIGTERM), so a killed capture
// leaves no orphan; and stops a launched command it could not set up. A
// capture killed with SIGKILL detaches every followed process, which runs
// on unharmed. On bare metal a fault costs well under a
// microsecond; inside a VM with shadow page tables it can cost tens (see
// BenchmarkFault), so choose the epoch with the write working set in mind.
//
// Output: Record writes a directory of segment files (Options.SegmentEvery
// > 0, the command's default: -o trace.parquet --segment 5s), each a
// complete Parquet file, so a capture killed with SIGKILL loses at most the
// open segment; or one file (--segment 0), readable only after a clean
// stop. Any Parquet reader takes the directory ('trace.parquet/*.parquet').
//
// Linux-only code lives in _linux.go files; elsewhere every entry point
// returns an error wrapping ErrNotSupported.
package capture
