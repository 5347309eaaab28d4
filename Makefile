# membrane: `make run` serves MCP over HTTP on loopback; `make test` runs the
# test suite (installing what it needs first). `make help` lists the rest.

GO        ?= go
BIN       := bin
ADDR      ?= 127.0.0.1:8765
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/membrane

# The Ollama server the tests run: pinned, built from the Go module proxy
# into the cache on first use (about 2 minutes), then reused.
OLLAMA_VERSION := v0.6.5
TEST_OLLAMA    := $(CACHE_DIR)/ollama-$(OLLAMA_VERSION)/ollama
export MEMBRANE_TEST_OLLAMA ?= $(TEST_OLLAMA)

# A newer Ollama the e2e suite also runs against, as a version matrix
# (ollamatest.NewerVersion). Its module zip lacks llama.cpp's vendored
# headers; .ci/ollama-newer.sh takes them from Debian and the Go module
# proxy. Long to build (cgo, C++): 11.5 min of CPU, 80 min wall on a shared 2-core box,
# once. MEMBRANE_TEST_OLLAMA_NEWER=off skips it.
OLLAMA_NEWER_VERSION := v0.17.4
TEST_OLLAMA_NEWER    := $(CACHE_DIR)/ollama-$(OLLAMA_NEWER_VERSION)/ollama
export MEMBRANE_TEST_OLLAMA_NEWER ?= $(TEST_OLLAMA_NEWER)

# Jaeger, which the trace end-to-end test (make test-jaeger) sends OTLP to
# and queries: built from the Go module proxy into the cache on first use
# (about 12 minutes of CPU, once), then reused.
JAEGER_VERSION := v1.76.0
TEST_JAEGER    := $(CACHE_DIR)/jaeger-$(JAEGER_VERSION)/jaeger
export MEMBRANE_TEST_JAEGER ?= $(TEST_JAEGER)

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOTEST_FLAGS ?=

.PHONY: help build run ci-deps test test-e2e test-go test-warm test-clients test-browser test-jaeger lint race bench bench-peers fuzz demo deps test-deps clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

# The version stamped into the binaries: the git tag and commit, such as
# v0.3.0-4-g1a2b3c4-dirty; `go install` builds read theirs from the module.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS := $(if $(VERSION),-X main.version=$(VERSION))

build: ## build bin/membrane, bin/orchestrator and the load driver bin/membrane-load
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/membrane ./cmd/orchestrator ./cmd/membrane-load

run: build deps ## serve MCP over HTTP on $(ADDR) with whatever Ollama is found
	./$(BIN)/membrane --http $(ADDR)

# The slow tests `make test` leaves to `make test-e2e` (CI runs both): the
# cross-builds for other systems (two minutes of compiling) and a turn
# timeout that waits out its 20 s by design. A test named here that moves
# to another package must be moved in test-e2e's package list too.
E2E_TESTS := ^(TestBuildsForOtherSystems|TestHostileTurnTimeout)$$

test: test-deps ## the unit suites and the end-to-end ones (real Ollama, bubblewrap, binaries), with -race; not the slow ones of make test-e2e
	$(GO) test -race -count=1 -skip '^TestJaeger|$(E2E_TESTS)' $(GOTEST_FLAGS) ./...

test-e2e: test-deps ## the slow tests make test leaves out: cross-builds for other systems, the turn timeout
	$(GO) test -race -count=1 -run '$(E2E_TESTS)' $(GOTEST_FLAGS) ./sandbox/ ./cmd/orchestrator/

test-jaeger: test-deps $(TEST_JAEGER) ## one trace across orchestrator, membrane, the sandbox and Ollama, in a real Jaeger; untraced calls' records lead to their traces
	$(GO) test -race -count=1 -run '^TestJaeger' ./cmd/orchestrator ./cmd/membrane

test-warm: test-deps ## the sandbox's threat and pool tests again, every call from the warm pool (a session's first from the spare workspace)
	MEMBRANE_TEST_WARM=2 $(GO) test -race -count=1 -run 'TestThreats|TestWarmPool|TestWarmPython|TestSandboxEtc' $(GOTEST_FLAGS) ./sandbox/

test-clients: build test-deps ## real clients from npm (Inspector, conformance, OpenAI Agents JS; openai and Agents JS against orchestrator serve)
	./.ci/clients.sh

# The Lens's browser suite writes its screenshots (PNG) and measurements
# (JSON) here.
ARTIFACTS ?= $(CURDIR)/artifacts

test-browser: test-deps ## the Lens in a real chromium (chromedp): screenshots and timings go to $(ARTIFACTS)/lens
	@./.ci/deps.sh browser
	MEMBRANE_TEST_ARTIFACTS=$(ARTIFACTS)/lens $(GO) test -race -count=1 -tags browser -run 'Browser' ./cmd/membrane
	@# The load and timing measurements run without the race detector, whose
	@# slowdown of the server would make the load they measure unreal.
	MEMBRANE_TEST_ARTIFACTS=$(ARTIFACTS)/lens $(GO) test -count=1 -tags browser -run 'Browser' ./calls/lens

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags browser ./calls/lens ./cmd/membrane
	cd tools/bench/mcpgo && $(GO) vet .
	GOOS=darwin GOARCH=arm64 $(GO) vet ./sandbox/ ./cmd/...
	GOOS=darwin GOARCH=amd64 $(GO) build -o /dev/null ./cmd/membrane ./cmd/orchestrator
	$(GO) run $(STATICCHECK) ./...

race: test-deps ## the Go tests with the race detector, run twice to shake out flakes
	$(GO) test -race -count=2 ./...

bench: build test-deps $(TEST_JAEGER) ## benchmarks, reported as ratios against a baseline from the same run (builds Jaeger once, for the traced call)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=2s ./...

# The peers bench-peers times membrane against, installed from npm into the
# cache; srt needs ripgrep and socat as well.
PEERS ?= $(HOME)/.cache/membrane/peers

bench-peers: build test-deps ## membrane side by side with ollama-mcp, mcp-server-commands and srt (npm): a table for the README; off CI
	@if [ "$$(id -u)" = 0 ] && ! { command -v rg && command -v socat; } >/dev/null; then apt-get install -y -q ripgrep socat; fi
	npm install --no-audit --no-fund --silent --prefix $(PEERS) ollama-mcp@2.1.0 mcp-server-commands@0.5.0 @anthropic-ai/sandbox-runtime@0.0.78
	$(GO) run ./tools/bench/peers -membrane ./$(BIN)/membrane -peers $(PEERS)

fuzz: ## each fuzz target for FUZZTIME (default 10s)
	./.ci/fuzz.sh $(or $(FUZZTIME),10s)

demo: build test-deps ## the whole chain on a fresh machine: scripted model -> orchestrator -> membrane -> sandbox
	$(GO) run ./cmd/orchestrator/demo

deps: ## what `make run` needs: bubblewrap for the sandbox (installed when root)
	@./.ci/deps.sh runtime

# CI builds these side by side, beside make lint: the two test Ollamas and
# Jaeger are long builds, and the C++ of the newer Ollama keeps one core
# busy for most of its time.
ci-deps: test-deps $(TEST_JAEGER) ## what every CI stage needs (.ci/run runs make -j3 ci-deps beside make lint)

test-deps: ## what the tests need: bubblewrap, prometheus, matplotlib and the two test Ollama versions
	@./.ci/deps.sh test
	@$(MAKE) --no-print-directory $(TEST_OLLAMA) $(if $(filter off,$(MEMBRANE_TEST_OLLAMA_NEWER)),,$(MEMBRANE_TEST_OLLAMA_NEWER))

$(TEST_OLLAMA):
	@echo "building the test Ollama $(OLLAMA_VERSION) into $(dir $@) (about 2 minutes, once)"
	mkdir -p $(dir $@)
	GOBIN=$(dir $@) GOFLAGS=-buildvcs=false $(GO) install github.com/ollama/ollama@$(OLLAMA_VERSION)

$(MEMBRANE_TEST_OLLAMA_NEWER):
	@echo "building the newer test Ollama $(OLLAMA_NEWER_VERSION) into $(dir $@) (long: cgo and C++, once)"
	./.ci/ollama-newer.sh $(OLLAMA_NEWER_VERSION) $(dir $@)

$(TEST_JAEGER):
	@echo "building Jaeger $(JAEGER_VERSION) into $(dir $@) (about 12 minutes of CPU, once)"
	GO=$(GO) ./.ci/jaeger.sh $(JAEGER_VERSION) $(dir $@)

clean:
	rm -rf $(BIN)
