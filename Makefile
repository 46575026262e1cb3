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

.PHONY: all build test vet fmt-check tidy-check cross unit race run bench fuzz clean

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

# run replays the shipped and synthetic traces through every policy and
# writes the comparison under $(OUT)/.
run: build
	@mkdir -p $(OUT)
	./scripts/run.sh $(BIN) $(OUT)

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
