# shellcheck shell=bash
# Sourced by profile.sh and profile-ab.sh: one `tailor serve profile` at a time on 127.0.0.1:$PORT,
# its database, and the load generator aimed at it. The caller sets TAILOR (the binary), OUT,
# PORT, SERVER_THREADS, CLIENT_THREADS, PG and REDIS_URL.

say() { printf '\n\033[1m== %s ==\033[0m\n' "$*" >&2; }
# Prints a command, then runs it: the exact commands are part of the results.
run() { printf '+ %s\n' "$*" >&2; "$@"; }

source crates/loadgen/bench/server-process.sh
trap stop_server EXIT

# start_server NAME DATABASE_URL [REDIS]
start_server() {
  local name=$1 db=$2 redis=${3:-}
  local env=(TOKIO_WORKER_THREADS="$SERVER_THREADS" RUST_LOG=warn
    TAILOR_PROFILE__DATABASE__URL="$db" TAILOR_PROFILE__SERVER__LISTEN="127.0.0.1:$PORT")
  [[ -n $redis ]] && env+=(TAILOR_REDIS__URL="$REDIS_URL" TAILOR_REDIS__NAMESPACE="bench:$name:")
  printf '+ %s %s serve profile\n' "${env[*]}" "$TAILOR" >&2
  env "${env[@]}" "$TAILOR" serve profile >"$OUT/server-$name.log" 2>&1 &
  server_pid=$!
  wait_serving "$TAILOR" "127.0.0.1:$PORT" "$OUT/server-$name.log"
}

loadgen() {
  run env TOKIO_WORKER_THREADS="$CLIENT_THREADS" "$TAILOR" loadgen "$@" \
    --target "profile=http://127.0.0.1:$PORT" --echo-workers "$SERVER_THREADS"
}

# database NAME BACKEND: a fresh, empty database URL for one measurement.
database() {
  local name=$1 backend=$2
  case $backend in
    sqlite)
      rm -rf "$OUT/db-$name" && mkdir -p "$OUT/db-$name"
      echo "sqlite://$OUT/db-$name/profile.db"
      ;;
    postgres)
      local db="tailor_bench_${name//-/_}"
      run dropdb --if-exists --force --maintenance-db="$PG/postgres" "$db" >&2
      run createdb --maintenance-db="$PG/postgres" "$db" >&2
      echo "$PG/$db"
      ;;
  esac
}
