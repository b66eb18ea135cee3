# imagegate — see README.md. `make test` is what CI runs.
GO      ?= go
BIN     ?= bin/imagegate
PKGS    := ./...

.PHONY: all build image unit test e2e e2e-runtime bench-runtime sdk bench bench-verify bench-store fuzz fuzz-long soak bench-peer demo fmt clean generate console-assets console-check console-test console-perf

all: build

# The version and revision come from git when there is one (an image built
# from a tarball gets them as build arguments instead, see Dockerfile).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -X github.com/imagegate/imagegate/internal/version.Version=$(VERSION) \
	-X github.com/imagegate/imagegate/internal/version.Revision=$(REVISION)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/imagegate

# The container image without a Docker daemon (cmd/imagebuild): the static
# binary for linux/amd64 and linux/arm64 on nothing but CA certificates and a
# nonroot user, with an SPDX SBOM, as an OCI layout in bin/image; the same
# commit gives the same digest. PUSH=registry.example.com/imagegate:tag also
# pushes it (docker config credentials). The Dockerfile builds the same
# binary on distroless.
PLATFORMS ?= linux/amd64,linux/arm64
image:
	$(GO) run ./cmd/imagebuild --out bin/image --platforms $(PLATFORMS) $(if $(PUSH),--push $(PUSH))

# CRDs from the policy Go types (kube.CRDs); TestCommittedCRDs fails when they are stale.
generate:
	$(GO) run ./cmd/crdgen deploy/crds deploy/helm/imagegate/crds

# Fast checks: formatting, vet and the unit/integration tests (seconds).
unit:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) test -count=1 $(PKGS)
	$(GO) run ./cmd/imagegate test examples/

# End to end against a real kube-apiserver, etcd, registry and cosign CLI
# (builds and caches the tools on first use; see test/e2e/README.md).
e2e:
	bash test/e2e/run.sh

# Continuous compliance at full scale: 1,000 pods across 10 namespaces
# (make e2e runs the same test with 200), and its Go benchmarks at 10,000 pods.
e2e-runtime:
	IMAGEGATE_E2E_RUNTIME_PODS=1000 bash test/e2e/run.sh -run 'TestRuntimeCompliance'

bench-runtime:
	$(GO) test -run '^$$' -bench 'MaliciousVerdict|PolicyChange|AdmissionDuringFullPass' -benchtime 20x ./compliance/
	$(GO) test -run '^$$' -bench 'InventoryMemory' -benchtime 1x ./inventory/

# The clouds' own SDKs (Alibaba Cloud, Tea/darabonba, Huawei Cloud) against a
# real imagegate serve; a module of its own, so the product's go.mod stays lean.
sdk:
	cd test/sdk && $(GO) test -count=1 -timeout 15m ./...

# The web console's assets (console/assets, embedded in the binary) from
# console/web with the npm toolchain its package-lock.json pins, installed
# into the tools cache by scripts/console-tools.sh. console-check rebuilds
# them and fails when the committed ones differ.
TOOLS_CACHE ?= $(or $(IMAGEGATE_TOOLS_CACHE),$(HOME)/.cache/imagegate-tools)
console-assets:
	bash scripts/console-tools.sh --no-browser
	. $(TOOLS_CACHE)/console-env.sh && "$$NODE" console/web/build.mjs

console-check: console-assets
	@if ! git diff --exit-code --stat -- console/assets || [ -n "$$(git status --porcelain -- console/assets)" ]; then \
		echo "console/assets differ from what console/web builds: run make console-assets and commit them"; exit 1; fi

# The console in headless Chromium (chromedp), a module of its own.
console-test:
	bash scripts/console-tools.sh
	. $(TOOLS_CACHE)/console-env.sh && cd test/console && $(GO) test -count=1 -timeout 15m ./...

# The console's figures over 1,000,000 events (docs/benchmarks.md): reported,
# not asserted; filling the store takes a while. Not part of make test.
console-perf:
	bash scripts/console-tools.sh
	. $(TOOLS_CACHE)/console-env.sh && cd test/console && CONSOLE_PERF_EVENTS=$${CONSOLE_PERF_EVENTS:-1000000} \
		$(GO) test -count=1 -timeout 90m -run TestConsolePerformance -v ./... | grep -v '^ *{"time"'

test: unit console-check e2e sdk console-test

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./rego/

# Signature verification against the cosign library (a module of its own).
bench-verify:
	$(GO) test -run '^$$' -bench 'Verify' -benchmem ./attestation/
	cd test/cosignlib && $(GO) test -run '^$$' -bench . -benchtime 100x

# The PostgreSQL store (not part of make test; PostgreSQL binaries as for
# e2e): pages of 100 from 10 million filled events (BENCH_EVENTS), three
# replicas' batched writes, then admission latency with --audit-store on
# PostgreSQL against bbolt (test/load/store.sh). BENCH_PG_URL keeps the fill
# in a database of your own between runs. See docs/benchmarks.md.
BENCH_EVENTS ?= 10000000
BENCH_WRITES ?= 300000
bench-store:
	IMAGEGATE_BENCH_STORE=1 IMAGEGATE_BENCH_EVENTS=$(BENCH_EVENTS) IMAGEGATE_BENCH_PG_URL=$(BENCH_PG_URL) \
		$(GO) test -run '^$$' -bench 'EventsQuery' -benchtime 50x -timeout 3h ./pgstore/
	IMAGEGATE_BENCH_STORE=1 $(GO) test -run '^$$' -bench 'EventsWrite' -benchtime $(BENCH_WRITES)x -count 2 -timeout 1h ./pgstore/
	bash test/load/store.sh

# Every decoder of outside input, FUZZTIME each (package:target). Crashers
# land in the package's testdata/fuzz and then run with the unit tests.
FUZZTIME    ?= 30s
FUZZFLAGS   ?=
FUZZ_TARGETS := workload:FuzzDecode workload:FuzzScanAs webhook:FuzzReview webhook:FuzzScanReview webhook:FuzzHandler \
	webhook:FuzzAppendAnswer internal/jsonscan:FuzzSkip policy:FuzzParse facts:FuzzParseFile \
	scan:FuzzParse api:FuzzRPC api:FuzzREST iam:FuzzParse \
	attestation:FuzzLegacySignature attestation:FuzzBundle

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "== $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./$$pkg/; \
	done

fuzz-long:
	$(MAKE) fuzz FUZZTIME=10m

# imagegate and sigstore policy-controller (built from its Go module into
# the tools cache) side by side through one kube-apiserver: pod-create
# latency cold and warm, registry requests (not part of make test).
bench-peer:
	bash test/e2e/peer.sh

# Ten minutes of distinct images through imagegate serve, memory and
# goroutines sampled into soak-out/ (not part of make test).
soak:
	bash test/soak/run.sh

demo:
	$(GO) run ./cmd/imagegate check --policies examples/policies --facts examples/facts.yaml \
		--cluster-id prod-cluster examples/manifests/*.yaml || true

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
