#!/usr/bin/env bash
# The profile service's benchmark (issue 3): ingestion throughput (RecordEvents, batches of
# 500) and cached read latency (GetProfile at 5,000/s) over gRPC, on SQLite and on
# PostgreSQL, each with the echo baseline measured in the same run. Prints a table; the
# reports (JSON), plots (SVG) and server logs stay in $OUT.
#
#   crates/loadgen/bench/profile.sh                 # everything (about 10 minutes)
#   BACKENDS=sqlite crates/loadgen/bench/profile.sh # one backend
#   REDIS=1 crates/loadgen/bench/profile.sh         # PostgreSQL with the Redis cache and bus
#
# Needs PostgreSQL at $PG (createdb/dropdb, user postgres) for the postgres backend.
set -euo pipefail
cd "$(dirname "$0")/../../.."

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$(mktemp -d /tmp/tailor-bench.XXXXXX)}
BACKENDS=${BACKENDS:-sqlite postgres}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PORT=${PORT:-50151}
INGEST_RATES=${INGEST_RATES:-60,100,140,200,280}
INGEST_DURATION=${INGEST_DURATION:-15s}
READ_RATE=${READ_RATE:-5000}
READ_DURATION=${READ_DURATION:-20s}
# Both processes share the machine's cores: each gets a runtime thread per core (tokio's
# default), and the generator's in-process echo server gets as many as the service.
SERVER_THREADS=${SERVER_THREADS:-$(nproc)}
CLIENT_THREADS=${CLIENT_THREADS:-$(nproc)}

TAILOR=$CARGO_TARGET_DIR/release/tailor
SCENARIOS=crates/loadgen/scenarios
mkdir -p "$OUT"

# say, run, start_server, stop_server, loadgen, database.
source crates/loadgen/bench/profile-server.sh

say "build (release)"
run cargo build --release -p tailor --bin tailor

bench_backend() {
  local backend=$1 redis=${2:-}
  local label=$backend${redis:++redis}

  say "$label: ingestion (RecordEvents x 500, open-loop sweep, echo baseline)"
  start_server "$label-ingest" "$(database "$label-ingest" "$backend")" "$redis"
  loadgen "$SCENARIOS/profile-ingest.toml" --rates "$INGEST_RATES" --duration "$INGEST_DURATION" \
    --baseline echo --json "$OUT/$label-ingest.json" --plot "$OUT/$label-ingest.svg" --quiet \
    | tee "$OUT/$label-ingest.txt"
  stop_server

  say "$label: cached reads (GetProfile at $READ_RATE/s, open loop, echo baseline)"
  start_server "$label-read" "$(database "$label-read" "$backend")" "$redis"
  loadgen "$SCENARIOS/profile-seed.toml" --quiet >"$OUT/$label-seed.txt"
  loadgen "$SCENARIOS/profile-warm.toml" --quiet >"$OUT/$label-warm.txt"
  loadgen "$SCENARIOS/profile-read.toml" --rate "$READ_RATE" --duration "$READ_DURATION" \
    --baseline echo --json "$OUT/$label-read.json" --plot "$OUT/$label-read.svg" --quiet \
    | tee "$OUT/$label-read.txt"
  stop_server
}

for backend in $BACKENDS; do
  bench_backend "$backend"
done
if [[ -n ${REDIS:-} ]]; then
  bench_backend postgres redis
fi

say "summary ($(nproc) cores; reports in $OUT)"
python3 - "$OUT" <<'EOF'
import glob, json, os, sys

out = sys.argv[1]
def load(path):
    with open(path) as f:
        return json.load(f)

print(f"{'backend':<16} {'ingest events/s':>16} {'echo ceiling ev/s':>18} {'ratio':>7}   "
      f"{'read p50 ms':>11} {'read p99 ms':>11} {'echo p99 ms':>11} {'p99 ratio':>9}")
labels = sorted({os.path.basename(p).rsplit('-', 1)[0] for p in glob.glob(f"{out}/*-ingest.json")}
                | {os.path.basename(p).rsplit('-', 1)[0] for p in glob.glob(f"{out}/*-read.json")})
for label in labels:
    row = [f"{label:<16}"]
    ingest = f"{out}/{label}-ingest.json"
    if os.path.exists(ingest):
        r = load(ingest)
        batch = max((s['mean_items'] for run in r['target']['runs'] for s in run['steps']), default=0)
        c = r.get('ceiling') or {}
        t = c.get('target', 0) * batch
        b = c.get('baseline', 0) * batch
        ge = lambda sat: '' if sat else '>='
        row.append(f"{ge(c.get('target_saturated', True)) + format(t, ',.0f'):>16} "
                   f"{ge(c.get('baseline_saturated', True)) + format(b, ',.0f'):>18} "
                   f"{c.get('ratio', float('nan')):>7.4f}")
    else:
        row.append(f"{'-':>16} {'-':>18} {'-':>7}")
    read = f"{out}/{label}-read.json"
    if os.path.exists(read):
        r = load(read)
        t = r['target']['runs'][0]
        b = r['baseline']['runs'][0]
        row.append(f"  {t['latency_ms']['p50']:>11.3f} {t['latency_ms']['p99']:>11.3f} "
                   f"{b['latency_ms']['p99']:>11.3f} {t['latency_ms']['p99'] / b['latency_ms']['p99']:>9.2f}"
                   f"  ({t['throughput']:.0f}/s, {t['errors']} errors)")
    print(' '.join(row))
EOF
