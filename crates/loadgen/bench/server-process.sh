# shellcheck shell=bash
# Sourced by the benchmark scripts that run one server at a time in the background: its pid,
# how to wait until it serves, and how to stop it (each script traps stop_server on EXIT).

server_pid=
stop_server() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}

# wait_serving BINARY ADDR LOG: returns once the server at ADDR reports SERVING (about 30 s at
# most); otherwise stops the script, pointing at the server's LOG.
wait_serving() {
  local binary=$1 addr=$2 log=$3
  for _ in $(seq 1 150); do
    "$binary" health --addr "$addr" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "the server at $addr did not become SERVING; see $log" >&2
  exit 1
}
