# synchro: make targets. Every target that runs tests needs PostgreSQL with
# wal_level=logical; the test harness finds or starts one (see README).

GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test lint bench load-smoke load demo example-metrics

## test: vet, then run every test with the race detector against a real PostgreSQL.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

## lint: gofmt (fails on unformatted files), go vet and staticcheck (fetched through the Go module proxy).
lint:
	@unformatted="$$(gofmt -l .)"; if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## bench: a short smoke run of every benchmark (one iteration each, small data sets, no tests).
## The full sizes: drop -short and raise -benchtime (see docs in the README's Benchmarks).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -short ./...

## load-smoke: a few seconds of cmd/synchro-load (4 devices, in-process example server, throwaway
## PostgreSQL), once calling the engine, once through its HTTP handler, once through it with live
## sync (pulls that wait for changes); fails on any error.
load-smoke:
	$(GO) run ./cmd/synchro-load -smoke
	$(GO) run ./cmd/synchro-load -smoke -transport http
	$(GO) run ./cmd/synchro-load -smoke -transport http -wait 5s

## load: the default load run (50 devices, 30 s, with the raw PostgreSQL reference); see docs/benchmarks.md.
load:
	$(GO) run ./cmd/synchro-load

## demo: build and start the example server (examples/todo; SYNCHRO_DATABASE_URL, else a throwaway
## local PostgreSQL), run the scripted demo client against it, print its transcript, stop the server.
demo:
	GO=$(GO) ./examples/todo/demo.sh

## example-metrics: vet and build examples/metrics, a module of its own (its SDK and Prometheus exporter stay out of go.mod).
example-metrics:
	cd examples/metrics && $(GO) vet ./... && $(GO) build -o /dev/null ./...
