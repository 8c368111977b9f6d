# shellcheck shell=bash
# Sourced by system.sh and ab.sh: where `tailor serve all` listens in the benchmarks and the
# environment it runs with on each backend.
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

