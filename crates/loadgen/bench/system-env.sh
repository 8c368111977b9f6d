# shellcheck shell=bash
# Sourced by system.sh, ab.sh and recommend-ab.sh: where `tailor serve all` listens in the
# benchmarks, the environment it runs with on each backend, and how to start it.
PG=${PG:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PROFILE=127.0.0.1:50251
RECOMMEND=127.0.0.1:50252
GATEWAY=127.0.0.1:18080
METRICS=127.0.0.1:19464

# The app's rate limits protect a real gateway from one abusive client; the generator is one
# machine playing 100,000 users, so they are lifted for the run.
system_env() {
  local label=$1
  echo TAILOR_PROFILE__SERVER__LISTEN=$PROFILE TAILOR_RECOMMEND__SERVER__LISTEN=$RECOMMEND \
    TAILOR_GATEWAY__SERVER__LISTEN=$GATEWAY \
    TAILOR_GATEWAY__UPSTREAMS__PROFILE__URL=http://$PROFILE \
    TAILOR_GATEWAY__UPSTREAMS__RECOMMEND__URL=http://$RECOMMEND \
    TAILOR_GATEWAY__RATE_LIMIT__PER_USER_PER_SECOND=1000000 \
    TAILOR_GATEWAY__RATE_LIMIT__PER_USER_BURST=1000000 \
    TAILOR_GATEWAY__RATE_LIMIT__PER_IP_PER_SECOND=1000000 \
    TAILOR_GATEWAY__RATE_LIMIT__PER_IP_BURST=1000000 \
    TAILOR_RECOMMEND__TRAINING__MODEL_POLL=2s \
    TAILOR_TELEMETRY__METRICS_LISTEN=$METRICS RUST_LOG=warn
  case $label in
    embedded) ;;
    postgres)
      echo TAILOR_PROFILE__DATABASE__URL="$PG/tailor_sys_profile" \
        TAILOR_RECOMMEND__DATABASE__URL="$PG/tailor_sys_recommend" \
        TAILOR_REDIS__URL="$REDIS_URL" TAILOR_REDIS__NAMESPACE=bench:system:
      ;;
  esac
}


source crates/loadgen/bench/server-process.sh

# serve_all BINARY RUN_DIR BACKEND LOG: `BINARY serve all` in RUN_DIR with BACKEND's
# environment, in the background (server_pid), writing LOG; returns once its gateway is SERVING.
serve_all() {
  local binary=$1 dir=$2 label=$3 log=$4
  # shellcheck disable=SC2046 # one word per variable
  (cd "$dir" && exec env $(system_env "$label") "$binary" serve all) >"$log" 2>&1 &
  server_pid=$!
  wait_serving "$binary" "$GATEWAY" "$log"
}

# ab_arguments BEFORE AFTER NAME: the before/after scripts' two builds (BEFORE, AFTER), the
# seeded run directory they start from (SEED) and where reports go (OUT, by default a new
# /tmp/tailor-NAME.*), as absolute paths.
# shellcheck disable=SC2034 # set for the script that calls it
ab_arguments() {
  BEFORE=$(realpath "$1")
  AFTER=$(realpath "$2")
  SEED=$(realpath "${SEED:?a seeded run directory: see the usage at the top of the script}")
  OUT=${OUT:-$(mktemp -d "/tmp/tailor-$3.XXXXXX")}
  OUT=$(realpath "$OUT")
  mkdir -p "$OUT"
}
