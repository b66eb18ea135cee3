#!/usr/bin/env bash
# Admission latency with the shared store against the file stores, side by
# side: two imagegate serve on loopback with test/load's policies and facts
# (a facts file: scan facts are read from memory either way), one with
# --audit-store on a PostgreSQL started here (initdb, fsync on), one with a
# bbolt file, posted to alternately by test/load. Alerting and denied pods are audit events (the store's writes);
# repeated pods are not. ROUNDS rounds (default 3) of D (8s) per run, C (16)
# keep-alive clients, RATE requests/s (default 1000: what the two cores give
# both servers in turn; 0 for as fast as answers come).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f ~/.cache/imagegate-tools/env.sh ] && source ~/.cache/imagegate-tools/env.sh
PG_BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PG_BINDIR/initdb" ] || { echo "store.sh: no PostgreSQL (set PG_BINDIR)" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
go build -o "$work/imagegate" ./cmd/imagegate
go build -o "$work/load" ./test/load
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" \
  -days 1 -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null

# PostgreSQL with its defaults (fsync on): as the postgres user under root.
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
mkdir -p "$work/pg" && [ "$(id -u)" = 0 ] && chown postgres "$work/pg"
chmod 755 "$work"
pgport=$((30000 + RANDOM % 10000))
as_pg "'$PG_BINDIR/initdb' -D '$work/pg/data' -U postgres -A trust -E UTF8 --locale=C >/dev/null"
as_pg "'$PG_BINDIR/postgres' -D '$work/pg/data' -p $pgport -c listen_addresses=127.0.0.1 -c unix_socket_directories= >'$work/pg/log' 2>&1" &
for _ in $(seq 300); do "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p $pgport && break; sleep 0.1; done
"$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p $pgport || { cat "$work/pg/log" >&2; exit 1; }
pgurl="postgres://postgres@127.0.0.1:$pgport/postgres?sslmode=disable"

port=$((20000 + RANDOM % 10000)); bport=$((port + 1))
export GOGC=${SERVER_GOGC:-400} GOMEMLIMIT=${SERVER_GOMEMLIMIT:-400MiB}
common=(serve --policies test/load/testdata/policies --facts test/load/testdata/facts.yaml --cluster-id load
  --tls-cert-file "$work/tls.crt" --tls-private-key-file "$work/tls.key" --metrics-listen "" --log-level error)
"$work/imagegate" "${common[@]}" --listen 127.0.0.1:$port --audit-store "$pgurl" 2>"$work/pg.log" &
"$work/imagegate" "${common[@]}" --listen 127.0.0.1:$bport --audit-store "$work/audit.db" 2>"$work/bolt.log" &
unset GOGC GOMEMLIMIT
for p in $port $bport; do
  for _ in $(seq 100); do curl -skf https://127.0.0.1:$p/readyz >/dev/null && break; sleep 0.1; done
  curl -skf https://127.0.0.1:$p/readyz >/dev/null || { cat "$work"/*.log >&2; exit 1; }
done
C=${C:-16}; D=${D:-8s}; RATE=${RATE:-1000}
run() {
  local name=$1 url=$2; shift 2
  local out; out=$("$work/load" -url "$url" -c "$C" -d "$D" -rate "$RATE" "$@")
  printf '%-24s %s %s\n' "$name" "$(echo "$out" | sed -n 's/.*\(throughput=[0-9]*\/s\).*/\1/p')" "$(echo "$out" | tail -1)"
}
for round in $(seq "${ROUNDS:-3}"); do
  echo "== round $round"
  for shape in alert deny repeated; do
    run "postgres $shape" https://127.0.0.1:$port/validate -shape $shape
    run "bbolt $shape" https://127.0.0.1:$bport/validate -shape $shape
  done
done
events=$("$PG_BINDIR/psql" -h 127.0.0.1 -p $pgport -U postgres -Atc "SELECT count(*) FROM imagegate_audit_events" postgres)
echo "audit events written to PostgreSQL: $events"
grep -i -m3 "error\|fail" "$work/pg.log" "$work/bolt.log" || true
