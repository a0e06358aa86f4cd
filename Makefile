# SmartScale — build, test and demo. Tools that tests need are built pinned
# into a cache outside the clone, keyed by version, so a fresh clone (CI) does
# not rebuild them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

export SMARTSCALE_CACHE ?= $(HOME)/.cache/smartscale
GO ?= go
BIN := bin

.PHONY: all build test test-unit test-fuzz test-infra lint fmt-check vet demo tools stack-up stack-down clean

all: build

build:
	$(GO) build -o $(BIN)/smartscale ./cmd/smartscale

## tools: build every pinned external component into $(SMARTSCALE_CACHE) (only what is missing)
tools:
	bash e2e/tools/install.sh

## stack-up: start the whole local stack in the background and print its URLs, kubeconfig and token
## (STACK_FLAGS: e.g. -nodes 3 -alertmanagers 2 -rules FILE -alertmanager-config FILE -scrape job=host:port)
stack-up: tools
	$(GO) build -o $(BIN)/stack ./e2e/cmd/stack
	$(BIN)/stack up $(STACK_FLAGS)

## stack-down: stop what stack-up started (by PID)
stack-down:
	$(GO) build -o $(BIN)/stack ./e2e/cmd/stack
	$(BIN)/stack down

test: fmt-check vet tools test-unit test-fuzz test-infra

test-unit:
	$(GO) test -race -count=1 -timeout 30m ./...

test-fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 60s ./internal/alert

test-infra:
	bash infra/test.sh

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint: fmt-check vet
	bash e2e/tools/install.sh golangci-lint
	"$$(bash e2e/tools/path.sh golangci-lint)" run ./...

## demo: the whole loop on the local stack, told as a traffic spike (DEMO_KEEP=1 keeps it running)
demo: build
	$(GO) build -o $(BIN)/demoapp ./cmd/demoapp
	bash e2e/tools/install.sh dynalite prometheus alertmanager etcd kube kwok kube-state-metrics
	$(GO) run ./e2e/cmd/demo

clean:
	rm -rf $(BIN)

## helm-sync: copy rules/ into the chart, which cannot read files outside itself (helm/test fails while they differ)
.PHONY: helm-sync
helm-sync:
	rm -f helm/smartscale/rules/*.yaml
	cp rules/*.yaml helm/smartscale/rules/
