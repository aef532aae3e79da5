# olm — build and test. `make serve` builds and starts the server; `make test`
# runs every test. Both build the pinned llama.cpp release first (cached in
# ~/.cache/olm, so only the first run compiles it).
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
TAGS ?=
ifeq ($(OLM_CUDA),1)
TAGS += cuda
endif

.PHONY: all deps build llama tools npm serve test bench clean

all: build

deps:
	scripts/deps.sh

llama: deps
	scripts/llama-cpp.sh

tools:
	scripts/tools.sh

npm: deps
	cd registry-test/npm && npm ci --no-audit --no-fund --silent

build: llama
	$(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/olm ./cmd/olm

serve: build
	./bin/olm serve

test: llama tools npm build
	$(GO) test -tags '$(TAGS)' -timeout 40m ./...

bench: build tools
	bench/run.sh

clean:
	rm -rf bin
