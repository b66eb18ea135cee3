# imagegate — see README.md. `make test` is what CI runs.
GO      ?= go
BIN     ?= bin/imagegate
PKGS    := ./...

.PHONY: all build image unit test e2e bench bench-verify fuzz demo fmt clean generate

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/imagegate

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

# End to end against a real kube-apiserver, etcd, registry and cosign CLI
# (builds and caches the tools on first use; see test/e2e/README.md).
e2e:
	bash test/e2e/run.sh

test: unit e2e

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./rego/

# Signature verification against the cosign library (a module of its own).
bench-verify:
	$(GO) test -run '^$$' -bench 'Verify' -benchmem ./attestation/
	cd test/cosignlib && $(GO) test -run '^$$' -bench . -benchtime 100x

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./workload/

demo:
	$(GO) run ./cmd/imagegate check --policies examples/policies --facts examples/facts.yaml \
		--cluster-id prod-cluster examples/manifests/*.yaml || true

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
