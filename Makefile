# microwiper: the two commands of the quick start are `make run` and `make test`.

GO      ?= go
BIN     := bin/microwiper
OUT     ?= out
PKGS    := ./...
# Packages whose concurrency the race detector should see; the rest run
# without it to keep `make test` well inside the CI budget.
RACE_PKGS ?= ./tracefmt/... ./replay/...
FUZZTIME ?= 10s
BENCHTIME ?= 1x

.PHONY: all build test vet fmt-check tidy-check cross unit race run reproduce bench fuzz clean test-guest test-kernels groundtruth traces

all: build

build:
	$(GO) build -o $(BIN) ./cmd/microwiper

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# tidy-check fails when go.mod or go.sum differ from what `go mod tidy`
# would write: a requirement the code no longer uses, or one marked
# indirect that the code imports.
tidy-check:
	$(GO) mod tidy -diff

# cross vets every package for macOS and Windows, where results are
# analysed: only capture and the netns link are Linux-only, behind build tags.
cross:
	GOOS=darwin $(GO) vet $(PKGS)
	GOOS=windows $(GO) vet $(PKGS)

# Packages run one at a time (-p 1): the socket, netns and capture tests
# measure real time and create kernel objects, and must not compete with
# each other for the two cores or see each other's namespaces.
unit:
	$(GO) test -p 1 -count=1 -timeout 20m $(PKGS)

# The sim-vs-socket agreement tests compare real time with virtual time; the
# race detector's slowdown would make them measure the detector, so they run
# in `unit` only.
race:
	$(GO) test -p 1 -count=1 -race -short -skip 'AgreesWithSim|AgreeWithSim' -timeout 20m $(RACE_PKGS)

test: vet fmt-check tidy-check cross unit race

# test-guest boots QEMU TCG guests with Debian's kernel (internal/guest's
# own tests); the first run downloads linux-image-amd64 with apt-get into
# ~/.cache/microwiper/guest. Needs qemu-system-x86, busybox-static, kmod
# and xz-utils. Not part of `test`: it takes about 30 s of CPU.
test-guest:
	MICROWIPER_GUEST_TESTS=1 $(GO) test -count=1 -timeout 10m ./internal/guest

# test-kernels runs capture's tests inside QEMU TCG guests booted with
# Debian kernels (KERNELS: comma-separated packages; default bookworm's
# 6.1, linux-image-amd64, and the newest it carries, linux-image-6.12-amd64)
# and writes the kernel x backend table to $(OUT)/kernel-matrix.md. Same
# needs as test-guest; about 2 minutes of 2 cores per kernel.
KERNELS ?=
test-kernels: test-guest
	@mkdir -p $(OUT)
	MICROWIPER_GUEST_TESTS=1 $(GO) test -count=1 -run 'TestSyncFallbacks|TestFreezer|TestKnownPatternUnpopulated' ./capture
	MICROWIPER_GUEST_TESTS=1 KERNELS=$(KERNELS) KERNEL_MATRIX_OUT=$(abspath $(OUT))/kernel-matrix.md \
		$(GO) test -count=1 -timeout 40m -v -run TestMatrix ./internal/kernelmatrix

# run replays the shipped traces (synthetic and captured) through every
# policy in the simulator over a bandwidth sweep (experiments/sweep.json,
# and sweep-once.json for the 'once' reading), then writes a report with
# figures for each under $(OUT)/. It replaces its own earlier results.
RUN_TRACES := traces/shipped/*.parquet traces/captured/*.parquet
run: build
	rm -rf $(OUT)/results $(OUT)/results-once $(OUT)/report $(OUT)/report-once
	./$(BIN) trace validate $(RUN_TRACES)
	./$(BIN) run --out $(OUT)/results experiments/sweep.json
	./$(BIN) run --out $(OUT)/results-once experiments/sweep-once.json >/dev/null
	./$(BIN) report --out $(OUT)/report --title "microwiper: shipped, captured and whole-VM traces, continuous dirtying" \
		--trace traces/shipped/wws-512mib.parquet --trace traces/captured/redis.parquet \
		--rounds-trace wws-512mib --rounds-bw 1Gbit $(OUT)/results
	./$(BIN) report --out $(OUT)/report-once --title "microwiper: shipped traces, 'once' dirtying" \
		--rounds-trace wws-512mib --rounds-bw 1Gbit $(OUT)/results-once
	@echo "open $(OUT)/report/report.html (figures: $(OUT)/report/*.svg, *.png, *.pdf)"

# reproduce runs the claim matrix (experiments/reproduce.json: baselines,
# the oracle and every Microwiper variant on every shipped, captured and
# VM trace at 100 Mbit/s, 1 Gbit/s and 10 Gbit/s, 10 start times a cell)
# as two shards, one per core, then writes REPRODUCTION.md with its
# figures in docs/reproduction/, the full report in $(OUT)/reproduce/report,
# and keeps the merged runs in experiments/results/reproduce/runs.parquet,
# from which a test
# rebuilds REPRODUCTION.md's tables.
REPRO_RESULTS := experiments/results/reproduce
REPRO_TRACES  := $(wildcard traces/shipped/*.parquet traces/captured/*.parquet traces/vm/*ib.parquet)
reproduce: build
	rm -rf $(OUT)/reproduce $(REPRO_RESULTS)
	./$(BIN) run --shard 0/2 --out $(OUT)/reproduce/shard-0 experiments/reproduce.json >/dev/null & pid=$$!; \
	./$(BIN) run --shard 1/2 --out $(OUT)/reproduce/shard-1 experiments/reproduce.json >/dev/null; rc=$$?; \
	wait $$pid && test $$rc -eq 0
	./$(BIN) report --out $(OUT)/reproduce/report --title "microwiper: the claim matrix" \
		$(foreach t,$(REPRO_TRACES),--trace $(t)) \
		--reproduction REPRODUCTION.md --reproduction-figures docs/reproduction --reproduction-runs $(REPRO_RESULTS) \
		$(OUT)/reproduce/shard-0 $(OUT)/reproduce/shard-1
	@echo "wrote REPRODUCTION.md (figures: docs/reproduction/; report: $(OUT)/reproduce/report/report.html)"

# groundtruth migrates small TCG guests with real QEMU over loopback, replays
# their whole-VM traces with qemu-precopy and writes GROUNDTRUTH.md; the
# traces and QEMU's figures go to traces/vm/ (checked by `make test`).
# Needs root, qemu-system-x86, busybox-static and the Debian archive
# (apt-get download of linux-image-amd64 on first use). About 12 minutes
# (11m26s on a quiet 2-core machine).
groundtruth: build
	nice -n -5 $(GO) run ./scripts/groundtruth -bin $(BIN) -o GROUNDTRUTH.md -traces traces/vm

# traces recaptures the whole-VM workload traces in traces/vm/ (idle,
# redis, sqlite, compile, stress: one TCG guest each, 512 MiB to 2 GiB,
# captured for 45 s with capture --qemu-qmp, each with its guest's measured
# slowdown) and rewrites traces/vm/README.md from them; the ground-truth
# traces there are left alone. Needs root, qemu-system-x86, busybox-static,
# gcc, libsqlite3-dev, redis-server, redis-tools, stress-ng and the Debian
# archive on first use (linux-image-amd64). About 6 minutes on 2 cores
# (5m53s at load average 1-6, 270 s of CPU).
traces: build
	nice -n 5 $(GO) run ./scripts/vmtraces -bin $(BIN) -traces traces/vm

bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem $(PKGS)

# fuzz runs every fuzz target for FUZZTIME each (go test allows one target
# per invocation).
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf bin $(OUT)
