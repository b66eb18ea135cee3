#!/usr/bin/env bash
# Measures imagegate serve on loopback with test/load: the floor (an exempt
# namespace: decode and answer, no policy work), the policy path with and
# without repeated decisions, and p99 at half the policy throughput.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/imagegate" ./cmd/imagegate
go build -o "$work/load" ./test/load
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" \
  -days 1 -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
port=$((20000 + RANDOM % 10000))
GOGC=${SERVER_GOGC:-400} GOMEMLIMIT=${SERVER_GOMEMLIMIT:-400MiB} "$work/imagegate" serve --policies test/load/testdata/policies --facts test/load/testdata/facts.yaml --cluster-id load \
  --tls-cert-file "$work/tls.crt" --tls-private-key-file "$work/tls.key" --listen 127.0.0.1:$port --metrics-listen "" \
  --log-level error 2>"$work/serve.log" &
for _ in $(seq 50); do curl -skf https://127.0.0.1:$port/readyz >/dev/null && break; sleep 0.1; done
url=https://127.0.0.1:$port/validate
C=${C:-16}; D=${D:-10s}
echo "== floor (exempt namespace, no policy work)"; "$work/load" -url $url -c $C -d $D -namespace kube-system
echo "== policy path, repeated pods (decision cache)"; out=$("$work/load" -url $url -c $C -d $D); echo "$out"
halfc=$(echo "$out" | sed -n 's/.*throughput=\([0-9]*\).*/\1/p'); halfc=$((halfc / 2))
echo "== half load ($halfc/s), repeated pods"; "$work/load" -url $url -c $C -d $D -rate $halfc
echo "== policy path, every pod distinct (no cache)"; out=$("$work/load" -url $url -c $C -d $D -unique); echo "$out"
half=$(echo "$out" | sed -n 's/.*throughput=\([0-9]*\).*/\1/p'); half=$((half / 2))
echo "== half load ($half/s), every pod distinct"; "$work/load" -url $url -c $C -d $D -unique -rate $half
