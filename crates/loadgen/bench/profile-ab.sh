#!/usr/bin/env bash
# Before/after of the profile service's ingestion on SQLite (or PostgreSQL): two `tailor`
# binaries, each load level run against one and then the other (the first alternating per
# level), every run on a fresh database, so the machine's drift hits both alike. Prints each
# run's line and the CPU the service spent per 1,000 stored events (on PostgreSQL also the
# server's, when it runs on this machine, its write-ahead log per event and the share of
# profile updates it made in place, "HOT"); the reports (text and JSON) and server logs stay
# in $OUT.
#
#   crates/loadgen/bench/profile-ab.sh /tmp/tailor-before /tmp/tailor-after
#   RATES="16 20 24" DURATION=15s crates/loadgen/bench/profile-ab.sh A B   # calls/s of 500 events
#   BACKEND=postgres RATES="28 34" DURATION=20s crates/loadgen/bench/profile-ab.sh A B
set -euo pipefail
cd "$(dirname "$0")/../../.."

[[ $# -eq 2 ]] || { echo "usage: $0 BEFORE_BINARY AFTER_BINARY" >&2; exit 2; }
BEFORE=$1 AFTER=$2
OUT=${OUT:-$(mktemp -d /tmp/tailor-profile-ab.XXXXXX)}
RATES=${RATES:-12 16 20 24}
DURATION=${DURATION:-15s}
BACKEND=${BACKEND:-sqlite}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PORT=${PORT:-50151}
SERVER_THREADS=${SERVER_THREADS:-$(nproc)}
CLIENT_THREADS=${CLIENT_THREADS:-$(nproc)}
mkdir -p "$OUT"

# say, run, start_server, stop_server, loadgen, database.
source crates/loadgen/bench/profile-server.sh

# CPU seconds × 100 (clock ticks) spent so far by the processes PIDS.
ticks() { local pid; for pid in "$@"; do awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null; done | awk '{ t += $1 } END { print t + 0 }'; }

# measure BINARY LABEL RATE
measure() {
  local name=$2-$3 url wal pg_ticks=0 stats
  TAILOR=$1
  url=$(database "$name" "$BACKEND")
  start_server "$name" "$url"
  if [[ $BACKEND == postgres ]]; then
    wal=$(psql "$url" -Atc 'SELECT pg_current_wal_lsn()')
    # shellcheck disable=SC2046 # one pid per word
    pg_ticks=$(ticks $(pgrep -x postgres))
  fi
  loadgen crates/loadgen/scenarios/profile-ingest.toml --rate "$3" --duration "$DURATION" \
    --quiet --json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1 || true
  local service_ticks; service_ticks=$(ticks "$server_pid")
  if [[ $BACKEND == postgres ]]; then
    # shellcheck disable=SC2046
    pg_ticks=$(($(ticks $(pgrep -x postgres)) - pg_ticks))
    stats=$(psql "$url" -Atc "SELECT format('%s|postgres %s ms, WAL %s KB/event, HOT %s %%', n, \
        round($pg_ticks * 10000.0 / greatest(n, 1), 1), \
        round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal') / 1024.0 / greatest(n, 1), 1), \
        round(100.0 * n_tup_hot_upd / greatest(n_tup_upd, 1))) \
      FROM (SELECT count(*) AS n FROM behavior_event) e, pg_stat_user_tables \
      WHERE relname = 'user_profile'")
  else
    stats="$(sqlite3 "${url#sqlite://}" 'SELECT count(*) FROM behavior_event' 2>/dev/null)|"
  fi
  stop_server
  local events=${stats%%|*}
  printf '%-7s %3s calls/s: ' "$2" "$3"
  grep -A1 '^  load ' "$OUT/$name.txt" | tail -1 | sed 's/^ *//'
  [[ -n $events ]] && awk -v t="$service_ticks" -v n="$events" -v rest="${stats#*|}" \
    'BEGIN { printf "          CPU per 1,000 events: service %.1f ms%s\n", t * 10000 / n, (rest == "" ? "" : ", " rest) }'
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
