#!/usr/bin/env bash
# Soak of imagegate serve (not run in CI): distinct images at a fixed rate
# against a local signing registry for SOAK_DURATION (default 10m), sampling
# resident memory, Go heap and goroutines every SOAK_EVERY into
# $SOAK_OUT/soak.csv and soak.png. SOAK_SCAN_STORE gives serve a scan store
# (SOAK_SCAN_RECORDS, e.g. 100000, writes one of that many records first).
# See docs/benchmarks.md, "Soak".
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${SOAK_OUT:-soak-out}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/imagegate" ./cmd/imagegate
go build -o "$work/soak" ./test/soak
store=${SOAK_SCAN_STORE:-}
if [ -n "${SOAK_SCAN_RECORDS:-}" ] && [ ! -s "${store:=$work/scans.db}" ]; then
  go test -run '^$' -bench WriteScanStore -benchtime 1x ./test/memory/ -images "$SOAK_SCAN_RECORDS" -store "$store" >/dev/null
fi
"$work/soak" -imagegate "$work/imagegate" -d "${SOAK_DURATION:-10m}" -rate "${SOAK_RATE:-50}" \
  -images "${SOAK_IMAGES:-3}" -max-inflight "${SOAK_MAX_INFLIGHT:-256}" -every "${SOAK_EVERY:-5s}" -out "$out" \
  ${store:+-scan-store "$store"}
echo "csv: $out/soak.csv, plot: $out/soak.png"
