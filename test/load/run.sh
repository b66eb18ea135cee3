#!/usr/bin/env bash
# Measures imagegate serve on loopback with test/load against the floor
# (test/load/floor: the same TLS server decoding the pod's images and
# allowing, no policy work), alternating the two so that both see the same
# machine: full speed, then p99 at half the floor's throughput, for each of
# test/load's shapes (reviews.Shapes). ROUNDS rounds (default 2) of D (10s)
# per run, C (16) keep-alive clients.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/imagegate" ./cmd/imagegate
go build -o "$work/load" ./test/load
go build -o "$work/floor" ./test/load/floor
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" \
  -days 1 -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
port=$((20000 + RANDOM % 10000)); fport=$((port + 1))
export GOGC=${SERVER_GOGC:-400} GOMEMLIMIT=${SERVER_GOMEMLIMIT:-128MiB}
"$work/imagegate" serve --policies test/load/testdata/policies --facts test/load/testdata/facts.yaml --cluster-id load \
  --tls-cert-file "$work/tls.crt" --tls-private-key-file "$work/tls.key" --listen 127.0.0.1:$port --metrics-listen "" \
  --log-level error 2>"$work/serve.log" &
"$work/floor" --listen 127.0.0.1:$fport --tls-cert-file "$work/tls.crt" --tls-private-key-file "$work/tls.key" &
unset GOGC GOMEMLIMIT
for p in $port $fport; do
  for _ in $(seq 50); do curl -skf https://127.0.0.1:$p/readyz >/dev/null && break; sleep 0.1; done
done
ig=https://127.0.0.1:$port/validate; fl=https://127.0.0.1:$fport/validate
C=${C:-16}; D=${D:-10s}
# run NAME URL ARGS...: one load run, summarised on one line.
run() {
  local name=$1 url=$2; shift 2
  local out; out=$("$work/load" -url "$url" -c "$C" -d "$D" "$@")
  printf '%-34s %s %s\n' "$name" "$(echo "$out" | sed -n 's/.*\(throughput=[0-9]*\/s\).*/\1/p')" "$(echo "$out" | tail -1)"
  echo "$out" | sed -n 's/.*throughput=\([0-9]*\).*/\1/p' >"$work/last"
}
for round in $(seq "${ROUNDS:-2}"); do
  echo "== round $round"
  run "floor" $fl; half=$(( $(cat "$work/last") / 2 ))
  run "imagegate repeated" $ig
  echo "-- half the floor's throughput: $half/s"
  run "floor @half" $fl -rate $half
  for shape in repeated distinct alert deny; do
    run "imagegate $shape @half" $ig -shape $shape -rate $half
  done
  for shape in distinct alert deny; do
    run "imagegate $shape" $ig -shape $shape
  done
done
