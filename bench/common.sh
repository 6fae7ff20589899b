# Shared by the bench scripts (sourced, not run).

# await_server URL PID LOG NAME: waits (up to 30 s) until URL answers; if the server (PID) stops
# first, prints its LOG and exits naming the script NAME.
await_server() {
  local url=$1 pid=$2 log=$3 name=$4
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "$url" && return 0
    kill -0 "$pid" 2>/dev/null || { echo "$name: caregate serve stopped; its log:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  echo "$name: caregate serve did not answer $url within 30 s" >&2
  exit 1
}
