#!/usr/bin/env bash
# The whole system under app load (issue 7) and the recommend service's serving rate (issue 4):
# `tailor serve all` (release) on the embedded default and on PostgreSQL + Redis, seeded with a
# 25,000-item catalog and Zipf shoppers' behaviour, then
#   - mobile-session.toml at $RATE session steps/s, open loop, over gRPC and over gRPC-web;
#   - a rate sweep of the same mix to its saturation, next to the echo server's (the ceiling);
#   - recommend-serve.toml at $REC_RATE recommendations/s straight at the recommend service;
#   - where the time goes: every role's server-side RPC latency from its Prometheus metrics;
#   - the server process's peak memory.
# Reports (text, JSON), plots (SVG), metrics and logs stay in $OUT; a summary is printed.
#
#   crates/loadgen/bench/system.sh                   # both backends (about 25 minutes)
#   BACKENDS=embedded crates/loadgen/bench/system.sh # one backend
#   SEED_ONLY=1 BACKENDS=embedded crates/loadgen/bench/system.sh # seed, leave it running
#
# The generator runs on the same machine, sharing its cores, as the issue asks.
set -euo pipefail
cd "$(dirname "$0")/../../.."

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$(mktemp -d /tmp/tailor-system.XXXXXX)}
OUT=$(realpath "$OUT")
BACKENDS=${BACKENDS:-embedded postgres}
RATE=${RATE:-2000}
SWEEP=${SWEEP:-1000,2000,3000,4000}
REC_RATE=${REC_RATE:-10000}
DURATION=${DURATION:-30s}
SWEEP_DURATION=${SWEEP_DURATION:-15s}
# Addresses, backends and the servers' environment (shared with ab.sh).
source crates/loadgen/bench/system-env.sh

TAILOR=$CARGO_TARGET_DIR/release/tailor
SCENARIOS=$PWD/crates/loadgen/scenarios
mkdir -p "$OUT"

say() { printf '\n\033[1m== %s ==\033[0m\n' "$*" >&2; }
run() { printf '+ %s\n' "$*" >&2; "$@"; }

say "build (release)"
run cargo build --release -p tailor --bin tailor

trap stop_server EXIT

start_system() {
  local label=$1
  rm -rf "$OUT/run-$label" && mkdir -p "$OUT/run-$label"
  if [[ $label == postgres ]]; then
    for db in tailor_sys_profile tailor_sys_recommend; do
      run dropdb --if-exists --force --maintenance-db="$PG/postgres" "$db"
      run createdb --maintenance-db="$PG/postgres" "$db"
    done
    redis-cli -u "$REDIS_URL" --scan --pattern 'bench:system:*' | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null
  fi
  serve_all "$(realpath "$TAILOR")" "$OUT/run-$label" "$label" "$OUT/server-$label.log"
}

loadgen() {
  run "$TAILOR" loadgen "$@" --target "profile=http://$PROFILE" \
    --target "recommend=http://$RECOMMEND" --target "gateway=http://$GATEWAY" --quiet
}

peak_memory() { awk '/VmHWM|VmRSS/ { printf "%s %d MiB  ", $1, $2 / 1024 }' "/proc/$server_pid/status"; }

bench() {
  local label=$1
  say "$label: start and seed (25,000 items, Zipf shoppers' behaviour, training)"
  start_system "$label"
  loadgen "$SCENARIOS/mobile-seed-catalog.toml" --duration 30s >"$OUT/$label-seed-catalog.txt"
  loadgen "$SCENARIOS/mobile-seed-behaviour.toml" --duration 30s >"$OUT/$label-seed-behaviour.txt"
  sleep 2 # the last events cross the bus to the recommend service
  # The service may be training already (it trains at start when it has data); wait for it.
  for attempt in $(seq 1 60); do
    # shellcheck disable=SC2046 # one word per variable
    (cd "$OUT/run-$label" && env $(system_env "$label") "$OLDPWD/$TAILOR" train) \
      >"$OUT/$label-train.txt" 2>&1 && break
    [[ $attempt == 60 ]] && { cat "$OUT/$label-train.txt"; exit 1; }
    sleep 5
  done
  cat "$OUT/$label-train.txt"
  sleep 4 # the running recommend role polls for the new model every 2 s
  echo "after seeding: $(peak_memory)" | tee "$OUT/$label-memory.txt"
  if [[ -n ${SEED_ONLY:-} ]]; then
    # For profiling (perf record -p PID) or trying scenarios by hand against a warm system.
    echo "seeded; the system keeps running: pid $server_pid, gateway $GATEWAY, recommend $RECOMMEND, profile $PROFILE" >&2
    trap - EXIT
    exit 0
  fi

  say "$label: home feed mix at $RATE steps/s, gRPC (echo baseline)"
  loadgen "$SCENARIOS/mobile-session.toml" --rate "$RATE" --duration "$DURATION" --baseline echo \
    --json "$OUT/$label-session-grpc.json" | tee "$OUT/$label-session-grpc.txt"
  curl -s "http://$METRICS/metrics" >"$OUT/$label-metrics.txt"

  say "$label: the same over gRPC-web"
  loadgen "$SCENARIOS/mobile-session.toml" --rate "$RATE" --duration "$DURATION" \
    --transport grpc-web --json "$OUT/$label-session-web.json" | tee "$OUT/$label-session-web.txt"

  say "$label: sweep to saturation ($SWEEP steps/s; the echo sweep continues until it saturates)"
  loadgen "$SCENARIOS/mobile-session.toml" --rates "$SWEEP" --duration "$SWEEP_DURATION" \
    --baseline echo --json "$OUT/$label-sweep.json" --plot "$OUT/$label-sweep.svg" \
    | tee "$OUT/$label-sweep.txt"

  say "$label: recommend serving at $REC_RATE/s (echo baseline)"
  loadgen "$SCENARIOS/recommend-serve.toml" --rate "$REC_RATE" --duration "$DURATION" \
    --baseline echo --json "$OUT/$label-recommend.json" | tee "$OUT/$label-recommend.txt"
  echo "after the runs: $(peak_memory)" | tee -a "$OUT/$label-memory.txt"
  stop_server
}

for backend in $BACKENDS; do
  bench "$backend"
done

say "summary ($(nproc) cores; everything in $OUT)"
python3 crates/loadgen/bench/summary.py "$OUT"
