// Command writer is the capture tests' target: it writes a known pattern of
// pages, phase by phase, from several threads, and prints what it did, so a
// test can compare a captured trace with the truth.
//
//	writer -mode phases: print "buffer ADDR PAGES", wait for a line on stdin
//	  (with -wait) or -settle, then per phase print
//	  "phase K START_UNIX_NS END_UNIX_NS" and finally "done CHECKSUM".
//	writer -mode bench: random 8-byte writes for -duration; "ops N NS".
//	writer -mode zero: print "buffer ADDR PAGES", wait like phases, then
//	  fill every page with non-zero bytes, pause -gap, print "zeroed", set
//	  the pages ZeroedPage says to all zeros (memset), pause -gap, rewrite
//	  the pages RefilledPage says with non-zero bytes, pause -gap, and
//	  print "done 0".
//	writer -mode hold: map (and with -populate touch) the buffer, print
//	  "buffer ADDR PAGES", then sleep until stdin closes.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// InPhase says whether phase k writes page p: about a third of the pages,
// a different third each phase.
func InPhase(p, k int) bool { return splitmix(uint64(p)*1000003+uint64(k))%3 == 0 }

// ZeroedPage says whether -mode zero sets page p back to zeros: every
// third page. RefilledPage says whether it writes it non-zero again after
// that: every ninth.
func ZeroedPage(p int) bool   { return p%3 == 0 }
func RefilledPage(p int) bool { return p%9 == 0 }

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

func main() {
	mode := flag.String("mode", "phases", "phases, zero, bench or hold")
	pages := flag.Int("pages", 4096, "buffer size in pages")
	phases := flag.Int("phases", 4, "phases")
	threads := flag.Int("threads", 4, "writing threads")
	phase := flag.Duration("phase", 400*time.Millisecond, "length of a phase")
	gap := flag.Duration("gap", 400*time.Millisecond, "pause after each phase")
	settle := flag.Duration("settle", 0, "pause before the first phase")
	wait := flag.Bool("wait", false, "wait for a line on stdin before the first phase")
	huge := flag.Bool("huge", false, "advise MADV_HUGEPAGE on the buffer")
	populate := flag.Bool("populate", true, "touch every page before the first phase")
	duration := flag.Duration("duration", 2*time.Second, "bench: how long to write")
	flag.Parse()

	ps := os.Getpagesize()
	size := *pages * ps
	align := 2 << 20
	flags := syscall.MAP_PRIVATE | syscall.MAP_ANONYMOUS | syscall.MAP_NORESERVE
	if *mode == "hold" && *populate {
		// Much faster than touching each page from user space, where
		// every fault is a round trip (and in a VM, an exit).
		flags |= syscall.MAP_POPULATE
	}
	raw, err := syscall.Mmap(-1, 0, size+align, syscall.PROT_READ|syscall.PROT_WRITE, flags)
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer: mmap:", err)
		os.Exit(1)
	}
	// Align to 2 MiB so that a huge-page test really gets huge pages.
	off := (align - int(uintptr(unsafe.Pointer(&raw[0])))%align) % align
	buf := raw[off : off+size]
	if *huge {
		if err := syscall.Madvise(buf, 14 /* MADV_HUGEPAGE */); err != nil {
			fmt.Fprintln(os.Stderr, "writer: madvise:", err)
			os.Exit(1)
		}
	}
	if *populate && *mode != "hold" {
		for p := 0; p < *pages; p++ {
			buf[p*ps] = 1
		}
	}
	fmt.Printf("buffer %d %d\n", uintptr(unsafe.Pointer(&buf[0])), *pages)
	words := unsafe.Slice((*uint64)(unsafe.Pointer(&buf[0])), size/8)

	switch *mode {
	case "hold":
		bufio.NewReader(os.Stdin).ReadString('\n')
		return
	case "zero":
		if *wait {
			bufio.NewReader(os.Stdin).ReadString('\n')
		}
		time.Sleep(*settle)
		fill := func(p int) {
			for i := p * ps; i < (p+1)*ps; i++ {
				buf[i] = byte(i%251 + 1)
			}
		}
		for p := 0; p < *pages; p++ {
			fill(p)
		}
		time.Sleep(*gap)
		fmt.Println("zeroed")
		for p := 0; p < *pages; p++ {
			if ZeroedPage(p) {
				clear(buf[p*ps : (p+1)*ps])
			}
		}
		time.Sleep(*gap)
		for p := 0; p < *pages; p++ {
			if RefilledPage(p) {
				fill(p)
			}
		}
		time.Sleep(*gap)
		fmt.Println("done 0")
		return
	case "bench":
		if *wait {
			bufio.NewReader(os.Stdin).ReadString('\n')
		}
		bench(words, *pages, ps, *threads, *duration)
		return
	}
	if *wait {
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	time.Sleep(*settle)
	for k := 0; k < *phases; k++ {
		start := time.Now()
		end := start.Add(*phase)
		var wg sync.WaitGroup
		for th := 0; th < *threads; th++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				// At least one full sweep, however late the thread starts,
				// so that the final content is deterministic.
				for first := true; first || time.Now().Before(end); first = false {
					for p := th; p < *pages; p += *threads {
						if InPhase(p, k) {
							words[p*ps/8+k%(ps/8)] = uint64(k+1) * uint64(p+1)
						}
					}
				}
			}()
		}
		wg.Wait()
		stop := time.Now()
		fmt.Printf("phase %d %d %d\n", k, start.UnixNano(), stop.UnixNano())
		time.Sleep(*gap)
	}
	var sum uint64
	for i, w := range words {
		sum = sum*31 + w ^ uint64(i)
	}
	fmt.Printf("done %d\n", sum)
}

// bench writes 8 bytes at pseudo-random pages of the buffer for d and
// prints how many writes it made.
func bench(words []uint64, pages, ps, threads int, d time.Duration) {
	var total atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for th := 0; th < threads; th++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := uint64(th + 1)
			n := int64(0)
			for {
				for i := 0; i < 4096; i++ {
					x ^= x << 13
					x ^= x >> 7
					x ^= x << 17
					p := int(x % uint64(pages))
					words[p*ps/8+int(x>>40)%(ps/8)]++
				}
				n += 4096
				if time.Now().After(end) {
					break
				}
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	fmt.Printf("ops %d %d\n", total.Load(), time.Since(start).Nanoseconds())
}
