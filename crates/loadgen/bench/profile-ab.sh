#!/usr/bin/env bash
# Before/after of the profile service's ingestion on SQLite: two `tailor` binaries, each load
# level run against one and then the other (the first alternating per level), every run on a
# fresh database, so the machine's drift hits both alike. Prints each run's line; the reports
# (text and JSON) and server logs stay in $OUT.
#
#   crates/loadgen/bench/profile-ab.sh /tmp/tailor-before /tmp/tailor-after
#   RATES="16 20 24" DURATION=15s crates/loadgen/bench/profile-ab.sh A B   # calls/s of 500 events
set -euo pipefail
cd "$(dirname "$0")/../../.."

[[ $# -eq 2 ]] || { echo "usage: $0 BEFORE_BINARY AFTER_BINARY" >&2; exit 2; }
BEFORE=$1 AFTER=$2
OUT=${OUT:-$(mktemp -d /tmp/tailor-profile-ab.XXXXXX)}
RATES=${RATES:-12 16 20 24}
DURATION=${DURATION:-15s}
PORT=${PORT:-50151}
THREADS=${THREADS:-$(nproc)}
mkdir -p "$OUT"

server_pid=
stop_server() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
trap stop_server EXIT

# measure BINARY LABEL RATE
measure() {
  local bin=$1 label=$2 rate=$3 dir=$OUT/db-$2-$3
  rm -rf "$dir" && mkdir -p "$dir"
  env TOKIO_WORKER_THREADS="$THREADS" RUST_LOG=warn \
    TAILOR_PROFILE__DATABASE__URL="sqlite://$dir/profile.db" \
    TAILOR_PROFILE__SERVER__LISTEN="127.0.0.1:$PORT" \
    "$bin" serve profile >"$OUT/server-$label-$rate.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    "$bin" health --addr "127.0.0.1:$PORT" >/dev/null 2>&1 && break
    sleep 0.2
  done
  env TOKIO_WORKER_THREADS="$THREADS" "$bin" loadgen crates/loadgen/scenarios/profile-ingest.toml \
    --rate "$rate" --duration "$DURATION" --target "profile=http://127.0.0.1:$PORT" --quiet \
    --json "$OUT/$label-$rate.json" >"$OUT/$label-$rate.txt" 2>&1 || true
  stop_server
  printf '%-7s %3s calls/s: ' "$label" "$rate"
  grep -A1 '^  load ' "$OUT/$label-$rate.txt" | tail -1 | sed 's/^ *//'
}

echo "columns: load, req/s, events/s, p50, p90, p99, p99.9, max (ms), errors, sustained"
first=0
for rate in $RATES; do
  if ((first == 0)); then
    measure "$BEFORE" before "$rate"
    measure "$AFTER" after "$rate"
  else
    measure "$AFTER" after "$rate"
    measure "$BEFORE" before "$rate"
  fi
  first=$((1 - first))
done
echo "reports in $OUT"
