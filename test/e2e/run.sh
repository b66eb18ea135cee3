#!/usr/bin/env bash
# Runs the end-to-end tests: installs or reuses the tools (scripts/e2e-tools.sh),
# then the tests of this module against a real kube-apiserver, etcd, registry
# and cosign CLI on 127.0.0.1, then the root module's cosign conformance test.
# Extra arguments go to go test (e.g. -run Webhook).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${IMAGEGATE_TOOLS_CACHE:-$HOME/.cache/imagegate-tools}

bash "$repo/scripts/e2e-tools.sh"
# shellcheck source=/dev/null
source "$cache/env.sh"
export KUBE_APISERVER ETCD REGISTRY COSIGN IMAGEGATE_COSIGN PG_BINDIR

cd "$repo/test/e2e"
IMAGEGATE_E2E=1 go test -count=1 -timeout 30m -v "$@" ./...

# The attestation package checks its verdicts against the real cosign CLI
# when IMAGEGATE_COSIGN is set; make unit runs it without, so it skips there.
cd "$repo"
go test -count=1 -timeout 10m -run 'Conformance' ./attestation/

# The alerting rules through promtool (make unit skips this without it;
# scripts/e2e-tools.sh installs it).
IMAGEGATE_E2E=1 go test -count=1 -timeout 10m -run 'TestAlertRulesPromtool' ./cmd/imagegate/

# The PostgreSQL stores (and the console over one) against a real server (make unit skips them when
# PostgreSQL is not installed; here it is, so they must run).
IMAGEGATE_E2E=1 go test -count=1 -timeout 10m ./pgstore/ ./console/
