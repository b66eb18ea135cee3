#!/usr/bin/env bash
# RSS of imagegate serve holding IMAGES (100,000) scan records: writes a scan
# store with test/memory's BenchmarkWriteScanStore, serves it with
# test/load's policies (GOGC=400 GOMEMLIMIT=128MiB as the Deployment and
# chart set, or SERVER_GOGC and SERVER_GOMEMLIMIT), reads the RSS once
# loaded and after D (10s) of distinct pods from test/load, and prints the
# peak (VmHWM). STORE names a store file to reuse (written when missing). RssFile is the store's pages mapped by bbolt (clean,
# reclaimable); RssAnon is the process's own memory.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/imagegate" ./cmd/imagegate
go build -o "$work/load" ./test/load
store=${STORE:-$work/scans.db}
[ -s "$store" ] || go test -run '^$' -bench WriteScanStore -benchtime 1x ./test/memory/ -images "${IMAGES:-100000}" -store "$store" >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" \
  -days 1 -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
port=$((20000 + RANDOM % 10000))
GOGC=${SERVER_GOGC:-400} GOMEMLIMIT=${SERVER_GOMEMLIMIT:-128MiB} "$work/imagegate" serve --policies test/load/testdata/policies --scan-store "$store" --cluster-id load \
  --tls-cert-file "$work/tls.crt" --tls-private-key-file "$work/tls.key" --listen 127.0.0.1:$port --metrics-listen "" \
  --log-level error 2>"$work/serve.log" &
pid=$!
start=$(date +%s)
until curl -skf https://127.0.0.1:$port/readyz >/dev/null; do
  kill -0 $pid || { cat "$work/serve.log"; exit 1; }
  [ $(( $(date +%s) - start )) -lt 600 ] || { echo "not ready after 600 s"; exit 1; }
  sleep 0.2
done
echo "ready after $(( $(date +%s) - start )) s"
sleep 2
echo "store: $(du -h "$store" | cut -f1), ${IMAGES:-100000} records"
rss() { grep -E 'VmRSS|RssAnon|RssFile' /proc/$pid/status | tr -s ' \t\n' ' '; }
echo "loaded: $(rss)"
"$work/load" -url https://127.0.0.1:$port/validate -c 16 -d "${D:-10s}" -shape distinct | sed -n 2p
echo "after load: $(rss) peak $(grep VmHWM /proc/$pid/status | tr -s ' \t' ' ')"
