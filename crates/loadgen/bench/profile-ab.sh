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
PG=${PG:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PORT=${PORT:-50151}
SERVER_THREADS=${SERVER_THREADS:-$(nproc)}
CLIENT_THREADS=${CLIENT_THREADS:-$(nproc)}
mkdir -p "$OUT"

# say, run, start_server, stop_server, loadgen, database.
source crates/loadgen/bench/profile-server.sh

# measure BINARY LABEL RATE
measure() {
  local name=$2-$3
  TAILOR=$1
  start_server "$name" "$(database "$name" sqlite)"
  loadgen crates/loadgen/scenarios/profile-ingest.toml --rate "$3" --duration "$DURATION" \
    --quiet --json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1 || true
  stop_server
  printf '%-7s %3s calls/s: ' "$2" "$3"
  grep -A1 '^  load ' "$OUT/$name.txt" | tail -1 | sed 's/^ *//'
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
