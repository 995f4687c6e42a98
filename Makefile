# farsign: the two commands a newcomer needs are `make quickstart` and `make test`.
# Everything here is a thin wrapper; the logic lives in Go tests and scripts/.

GO      ?= go
FUZZTIME ?= 10s

.PHONY: test lint unit fuzz quickstart tools lambda-zip

## test: the whole suite (lint, short fuzz runs, then unit + integration tests, whose
## go test output closes the log).
test: tools lint fuzz unit

## tools: npm tools the tests start (dynalite).
tools: tools/node_modules/.package-lock.json
tools/node_modules/.package-lock.json: tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

unit:
	$(GO) test -count=1 -timeout 20m ./...

## fuzz: run every fuzz target for $(FUZZTIME) (the seed corpora also run in `unit`).
fuzz:
	./scripts/fuzz-smoke $(FUZZTIME)

## quickstart: a real remote-signing session on an embedded relay (see README).
quickstart:
	./scripts/quickstart

## lambda-zip: the relay's AWS Lambda package (terraform/build/relay-lambda.zip).
lambda-zip:
	./terraform/build-lambda.sh
