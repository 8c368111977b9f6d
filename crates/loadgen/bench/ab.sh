#!/usr/bin/env bash
# Before/after of two builds of `tailor` in one go, on the same seeded data (embedded default):
# each binary gets its own copy of a seeded run directory, is started with system.sh's
# environment, trains once (`tailor train`, so both serve models of their own format from the
# same interactions), and is driven with recommend-serve.toml and mobile-session.toml sweeps;
# `tailor loadgen-compare` (of the after build) prints both side by side and plots them.
#
#   OUT=/tmp/seed SEED_ONLY=1 BACKENDS=embedded crates/loadgen/bench/system.sh  # once, then stop it
#   SEED=/tmp/seed/run-embedded crates/loadgen/bench/ab.sh /tmp/tailor-before /tmp/tailor-after
#
# Never run it while something else compiles: both sides must see the same machine.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source crates/loadgen/bench/system-env.sh

BEFORE=$(realpath "$1")
AFTER=$(realpath "$2")
SEED=$(realpath "${SEED:?a seeded run directory, see above}")
OUT=${OUT:-$(mktemp -d /tmp/tailor-ab.XXXXXX)}
OUT=$(realpath "$OUT")
REC_RATES=${REC_RATES:-1000,2000,3000,4000}
SESSION_RATES=${SESSION_RATES:-1000,1500,2000}
DURATION=${DURATION:-10s}
SCENARIOS=$PWD/crates/loadgen/scenarios
mkdir -p "$OUT"

say() { printf '\n\033[1m== %s ==\033[0m\n' "$*" >&2; }

measure() {
  local label=$1 binary=$2
  say "$label: $binary"
  rm -rf "$OUT/run-$label" && cp -r "$SEED" "$OUT/run-$label"
  # shellcheck disable=SC2046 # one word per variable
  (cd "$OUT/run-$label" && exec env $(system_env embedded) "$binary" serve all) \
    >"$OUT/server-$label.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 150); do
    "$binary" health --addr "$GATEWAY" >/dev/null 2>&1 && break
    sleep 0.2
  done
  for attempt in $(seq 1 60); do
    # shellcheck disable=SC2046
    (cd "$OUT/run-$label" && env $(system_env embedded) "$binary" train) \
      >"$OUT/$label-train.txt" 2>&1 && break
    [[ $attempt == 60 ]] && { cat "$OUT/$label-train.txt"; kill "$pid"; exit 1; }
    sleep 5
  done
  sleep 4 # the serving role polls for the new model every 2 s
  local targets=(--target "profile=http://$PROFILE" --target "recommend=http://$RECOMMEND"
    --target "gateway=http://$GATEWAY" --quiet)
  # The session mix first: the recommend sweep goes past saturation and leaves work behind
  # (deferred writes, a longer WAL) that would land in whatever is measured next.
  "$binary" loadgen "$SCENARIOS/mobile-session.toml" --rates "$SESSION_RATES" --duration "$DURATION" \
    --json "$OUT/$label-session.json" "${targets[@]}" >"$OUT/$label-session.txt"
  "$binary" loadgen "$SCENARIOS/recommend-serve.toml" --rates "$REC_RATES" --duration "$DURATION" \
    --json "$OUT/$label-recommend.json" "${targets[@]}" >"$OUT/$label-recommend.txt"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

measure before "$BEFORE"
measure after "$AFTER"

say "results (everything in $OUT)"
for scenario in recommend session; do
  "$AFTER" loadgen-compare "$OUT/before-$scenario.json" "$OUT/after-$scenario.json" \
    --plot "$OUT/$scenario.svg"
done
