#!/usr/bin/env bash
# Before/after of two builds of `tailor` in one go, on the same seeded data (embedded default):
# each binary gets its own copy of a seeded run directory and its own ports, is started with
# system.sh's environment and trains once (`tailor train`, so both serve models of their own
# format from the same interactions). Both then stay up while the generator drives them in
# turns, one load level at a time, the session mix (mobile-session.toml) and then recommend
# serving (recommend-serve.toml), the build that goes first alternating from level to level.
# `tailor loadgen-compare` (of the after build) prints both side by side and plots them.
#
#   OUT=/tmp/seed SEED_ONLY=1 BACKENDS=embedded crates/loadgen/bench/system.sh  # once, then stop it
#   SEED=/tmp/seed/run-embedded crates/loadgen/bench/ab.sh /tmp/tailor-before /tmp/tailor-after
#
# Why in turns: on the machines this is developed on, whichever build was measured first,
# whole sweep after whole sweep, came out ahead by up to 30x at the same load, with the order
# decided by nothing but the order (the same build won going first and lost going second).
# Taking turns per level spreads whatever drifts over a run across both builds.
# Never run it while something else compiles: both sides must see the same machine.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source crates/loadgen/bench/system-env.sh

ab_arguments "$1" "$2" ab
REC_RATES=${REC_RATES:-1000,2000,3000,4000}
SESSION_RATES=${SESSION_RATES:-1000,1500,2000}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-10s}
# Seconds between two measurements: what one build left queued past saturation (deferred
# writes, a longer WAL) drains before the other is measured.
SETTLE=${SETTLE:-5}
SCENARIOS=$PWD/crates/loadgen/scenarios

say() { printf '\n\033[1m== %s ==\033[0m\n' "$*" >&2; }

# The "before" build keeps system-env.sh's ports; the "after" build listens 1000 above.
use_ports() {
  local offset=$1
  PROFILE=127.0.0.1:$((50251 + offset)) RECOMMEND=127.0.0.1:$((50252 + offset))
  GATEWAY=127.0.0.1:$((18080 + offset)) METRICS=127.0.0.1:$((19464 + offset))
}
offset_of() { [[ $1 == before ]] && echo 0 || echo 1000; }
binary_of() { [[ $1 == before ]] && echo "$BEFORE" || echo "$AFTER"; }

declare -A PIDS
start() {
  local label=$1 binary
  binary=$(binary_of "$label")
  use_ports "$(offset_of "$label")"
  say "$label: $binary"
  rm -rf "$OUT/run-$label" && cp -r "$SEED" "$OUT/run-$label"
  serve_all "$binary" "$OUT/run-$label" embedded "$OUT/server-$label.log"
  PIDS[$label]=$server_pid
  for attempt in $(seq 1 60); do
    # shellcheck disable=SC2046
    (cd "$OUT/run-$label" && env $(system_env embedded) "$binary" train) \
      >"$OUT/$label-train.txt" 2>&1 && break
    [[ $attempt == 60 ]] && { cat "$OUT/$label-train.txt"; exit 1; }
    sleep 5
  done
}

stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all EXIT

# One load level of one scenario against one build: $OUT/<label>-<scenario>-<rate>.json.
level() {
  local label=$1 scenario=$2 rate=$3 binary
  binary=$(binary_of "$label")
  use_ports "$(offset_of "$label")"
  say "$label: $scenario at $rate/s"
  "$binary" loadgen "$SCENARIOS/$scenario.toml" --rate "$rate" --warmup "$WARMUP" \
    --duration "$DURATION" --json "$OUT/$label-$scenario-$rate.json" \
    --target "profile=http://$PROFILE" --target "recommend=http://$RECOMMEND" \
    --target "gateway=http://$GATEWAY" --quiet >>"$OUT/$label-$scenario.txt"
  sleep "$SETTLE"
}

# A side's levels as one report, in the order of the rates, for loadgen-compare.
merge() {
  local label=$1 scenario=$2 rates=$3 files=()
  for rate in ${rates//,/ }; do files+=("$OUT/$label-$scenario-$rate.json"); done
  jq -s '.[0] * {target: (.[0].target * {runs: [.[].target.runs[]]})}' "${files[@]}" \
    >"$OUT/$label-$scenario.json"
}

start before
start after
sleep 4 # the serving roles poll for the new model every 2 s

# The session mix first: the recommend levels go past saturation and leave work behind.
for scenario in mobile-session:$SESSION_RATES recommend-serve:$REC_RATES; do
  name=${scenario%%:*} rates=${scenario#*:} turn=0
  for rate in ${rates//,/ }; do
    if ((turn++ % 2 == 0)); then order="before after"; else order="after before"; fi
    for label in $order; do level "$label" "$name" "$rate"; done
  done
  merge before "$name" "$rates"
  merge after "$name" "$rates"
done

say "results (everything in $OUT)"
for scenario in recommend-serve mobile-session; do
  "$AFTER" loadgen-compare "$OUT/before-$scenario.json" "$OUT/after-$scenario.json" \
    --plot "$OUT/${scenario%%-*}.svg"
done
