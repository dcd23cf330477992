# synchro: make targets. Every target that runs tests needs PostgreSQL with
# wal_level=logical; the test harness finds or starts one (see README).

GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

# The nested modules (a go.mod of their own, with a replace directive to the
# repository root), so that what only the examples, the programs and some
# tests need (SQLite; testcontainers-go, run by internal/pgcontainer) stays
# out of the library's go.mod. `go test ./...` at the root
# does not enter them: the targets below run them too.
# examples/metrics has its own target (example-metrics).
MODULES := client examples/todo cmd/synchro-load internal/sqlitecheck internal/pgcontainer

.PHONY: test test-docker lint tidy modgraph bench load-smoke load demo example-metrics

## test: vet, then run every test with the race detector against a real PostgreSQL: the library's
## module, then each nested module.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	@set -e; for m in $(MODULES); do \
		echo "== $$m"; \
		$(GO) -C $$m vet ./...; \
		$(GO) -C $$m test -race -count=1 ./...; \
	done

## test-docker: the tests through the harness's container backend (testcontainers-go, run by
## internal/pgcontainer) on Podman's Docker API with a locally built PostgreSQL image, for machines
## with no Docker engine or registry (scripts/podman-test.sh; root, apt; see the README's Tests).
test-docker:
	GO=$(GO) scripts/podman-test.sh

## lint: gofmt (fails on unformatted files), go vet and staticcheck (fetched through the Go module proxy),
## in every module.
lint:
	@unformatted="$$(gofmt -l .)"; if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@set -e; for m in $(MODULES) examples/metrics; do \
		echo "== $$m"; \
		$(GO) -C $$m vet ./...; \
		$(GO) -C $$m run $(STATICCHECK) ./...; \
	done

## tidy: go mod tidy in every module.
tidy:
	$(GO) mod tidy
	@set -e; for m in $(MODULES) examples/metrics; do echo "== $$m"; $(GO) -C $$m mod tidy; done

## modgraph: how many modules an application importing synchro, wal, synchrohttp and migrations
## sees in `go list -m all` (a throwaway module in a temporary directory); fails above the target.
modgraph:
	GO=$(GO) scripts/modgraph.sh

## bench: a short smoke run of every benchmark (one iteration each, small data sets, no tests).
## The full sizes: drop -short and raise -benchtime (see docs in the README's Benchmarks).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -short ./...
	$(GO) -C client test -run '^$$' -bench . -benchtime 1x -count 1 -short ./...

## load-smoke: a few seconds of cmd/synchro-load (4 devices, in-process example server, throwaway
## PostgreSQL), once calling the engine, once through its HTTP handler, once through it with live
## sync (pulls that wait for changes), once with devices built on package client (SQLite files);
## fails on any error.
load-smoke:
	$(GO) -C cmd/synchro-load run . -smoke
	$(GO) -C cmd/synchro-load run . -smoke -transport http
	$(GO) -C cmd/synchro-load run . -smoke -transport http -wait 5s
	$(GO) -C cmd/synchro-load run . -smoke -transport client

## load: the default load run (50 devices, 30 s, with the raw PostgreSQL reference); see docs/benchmarks.md.
load:
	$(GO) -C cmd/synchro-load run .

## demo: build and start the example server (examples/todo; SYNCHRO_DATABASE_URL, else a throwaway
## local PostgreSQL), run the scripted demo client against it, print its transcript, stop the server.
demo:
	GO=$(GO) ./examples/todo/demo.sh

## example-metrics: vet, build and test examples/metrics, a module of its own (its SDK and Prometheus exporter stay out of go.mod);
## the test runs the example against a test database and reads its /metrics and /readyz.
example-metrics:
	cd examples/metrics && $(GO) vet ./... && $(GO) build -o /dev/null ./... && $(GO) test -race -count=1 ./...
