# olm — build and test. `make serve` builds and starts the server; `make test`
# runs every test. Both build the pinned llama.cpp release first (cached in
# ~/.cache/olm, so only the first run compiles it).
GO ?= go
# A semantic version, as clients that compare Ollama versions expect: the
# latest v* tag (without the v), else 0.1.0-dev+<commit>.
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null | sed 's/^v//' | grep . || echo "0.1.0-dev+$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)")
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
