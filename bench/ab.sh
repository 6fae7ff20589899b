#!/usr/bin/env bash
# A/B of two caregate binaries on one kind of request: each serves a fresh copy of the suite's
# database over plain HTTP in turn, and wrk sends it the suite's paths at 16 connections; the two
# alternate, so that a machine that slows or speeds up moves both alike. Prints each run's req/s and
# the means. For telling whether a change made a path slower, where one bench/run.sh pair is too
# noisy to say.
#
#   bench/ab.sh BEFORE AFTER [--paths read|vread|everything|observation|medication] [--rounds N] [--seconds S]
#
# Needs bench/run.sh to have run once (its database and paths are in bench/.data/suite/). A binary of
# an earlier commit: `git worktree add /tmp/old COMMIT && cmake -S /tmp/old -B /tmp/old/build -G Ninja
# && cmake --build /tmp/old/build --target caregate`.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n 7p "$0" | sed 's/^#   //'; }
[ $# -ge 2 ] || { usage >&2; exit 2; }
before=$1 after=$2; shift 2
paths=read rounds=3 seconds=8
while [ $# -gt 0 ]; do
  case "$1" in
    --paths) paths=${2:?--paths needs a kind}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs N}; shift 2 ;;
    --seconds) seconds=${2:?--seconds needs S}; shift 2 ;;
    *) echo "bench/ab.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

suite=bench/.data/suite
[ -f "$suite/caregate.db" ] && [ -f "$suite/read.paths" ] || {
  echo "bench/ab.sh: run bench/run.sh --quick once first (it makes $suite)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case "$paths" in
  vread) sed 's|$|/_history/1|' "$suite/read.paths" >"$work/paths" ;;
  *) [ -f "$suite/$paths.paths" ] || { echo "bench/ab.sh: no $suite/$paths.paths" >&2; exit 2; }
     cp "$suite/$paths.paths" "$work/paths" ;;
esac

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run BINARY: one measurement, req/s on standard output.
run() {
  local binary=$1 port base pid token
  port=$(free_port)
  base="http://127.0.0.1:$port/fhir"
  cp "$suite/caregate.db" "$work/ab.db"
  rm -f "$work/ab.db-wal" "$work/ab.db-shm"
  "$binary" serve --plain --listen "127.0.0.1:$port" --base-url "$base" --db "$work/ab.db" --certs certs/dev \
    >"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "$base/metadata" && break; sleep 0.1; done
  token=$("$binary" token --certs certs/dev --aud "$base" --org A81001 --role R8000 --user bench-gp-1 --ttl 7200)
  BASE_PATH=/fhir TOKEN="$token" PATHS="$work/paths" wrk -t 2 -c 16 -d 2s -s bench/wrk/paths.lua \
    "http://127.0.0.1:$port" >/dev/null 2>&1 || true
  BASE_PATH=/fhir TOKEN="$token" PATHS="$work/paths" wrk -t 2 -c 16 -d "${seconds}s" -s bench/wrk/paths.lua \
    "http://127.0.0.1:$port" 2>&1 | awk '/Non-2xx/ { bad = 1 } /Requests\/sec/ { rps = $2 } END { if (bad) print "non-2xx"; else print rps }'
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

sum_before=0 sum_after=0
for round in $(seq 1 "$rounds"); do
  b=$(run "$before"); a=$(run "$after")
  [ "$b" != non-2xx ] && [ "$a" != non-2xx ] || { echo "bench/ab.sh: a request failed (round $round)" >&2; exit 1; }
  echo "round $round: before $b req/s, after $a req/s"
  sum_before=$(awk -v s="$sum_before" -v x="$b" 'BEGIN { print s + x }')
  sum_after=$(awk -v s="$sum_after" -v x="$a" 'BEGIN { print s + x }')
done
awk -v b="$sum_before" -v a="$sum_after" -v n="$rounds" -v p="$paths" \
  'BEGIN { printf "%s, 16 connections, plain HTTP: before %.0f req/s, after %.0f req/s (%+.1f%%), means of %d rounds\n", p, b / n, a / n, 100 * (a - b) / b, n }'
