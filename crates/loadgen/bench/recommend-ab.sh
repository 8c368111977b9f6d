#!/usr/bin/env bash
# Before/after of recommend serving over gRPC (recommend-serve.toml) for two builds of
# `tailor`, with the CPU each side takes. Unlike ab.sh, one build runs at a time, alone on the
# machine: each gets a fresh copy of the same seeded run directory, is warmed up (its kept
# rankings filled) at $WARM_RATE, then measured at every rate in $RATES by its own generator,
# while the server's and the generator's CPU time are read from /proc. The builds take turns,
# $ROUNDS times.
#
#   OUT=/tmp/seed SEED_ONLY=1 BACKENDS=embedded crates/loadgen/bench/system.sh  # once, then stop it
#   SEED=/tmp/seed/run-embedded crates/loadgen/bench/recommend-ab.sh /tmp/tailor-before /tmp/tailor-after
#
# Prints one line per build and rate (cores of the server and of the generator over the middle
# of the run, then the generator's summary line); reports stay in $OUT.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source crates/loadgen/bench/system-env.sh
ab_arguments "$1" "$2" recommend-ab
RATES=${RATES:-6000 8000 10000}
WARM_RATE=${WARM_RATE:-5000}
ROUNDS=${ROUNDS:-2}
SCENARIO=$PWD/crates/loadgen/scenarios/recommend-serve.toml
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
cores() { awk -v t="$1" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz / 8 }'; }

trap stop_server EXIT

for round in $(seq "$ROUNDS"); do
  for side in before after; do
    binary=$BEFORE
    [[ $side == after ]] && binary=$AFTER
    run="$OUT/run-$side"
    rm -rf "$run" && cp -a "$SEED" "$run"
    serve_all "$binary" "$run" embedded "$OUT/server-$side-$round.log"
    "$binary" loadgen "$SCENARIO" --rate "$WARM_RATE" --warmup 2s --duration 13s \
      --target "recommend=http://$RECOMMEND" --quiet >/dev/null
    for rate in $RATES; do
      report="$OUT/$side-$rate-$round.txt"
      "$binary" loadgen "$SCENARIO" --rate "$rate" --warmup 3s --duration 16s \
        --target "recommend=http://$RECOMMEND" --quiet >"$report" 2>&1 &
      generator=$!
      sleep 8
      s0=$(ticks "$server_pid") g0=$(ticks "$generator")
      sleep 8
      s1=$(ticks "$server_pid") g1=$(ticks "$generator")
      # A level that is not sustained is a result, not a failure.
      wait "$generator" || true
      printf 'round %s %-6s server %s cores, generator %s cores | %s\n' "$round" "$side" \
        "$(cores $((s1 - s0)))" "$(cores $((g1 - g0)))" "$(grep -A1 '^  load ' "$report" | tail -1)"
    done
    stop_server
  done
done
