#!/usr/bin/env bash
# The peer server for caregate's benchmarks: @medplum/fhir-router's in-memory repository
# behind node's http server. Installs the locked dependencies (npm ci), then:
#
#   bench/peer/run.sh --install-only
#       only installs (so that a later start is not slowed by npm).
#   bench/peer/run.sh [--load FILE.ndjson] [--port N] [--host H] [--base /fhir]
#       serves in the foreground until killed, after loading FILE (bench/population.py's output; '-'
#       for standard input). Port 0 (the default) takes a free port. When it listens it prints
#           READY port=P base=http://H:P/fhir resources=N load_seconds=S
#   bench/peer/run.sh --check [--load FILE.ndjson]
#       starts it on a free port (loading FILE, or a 20-citizen population when none is given), runs
#       check.mjs against it (read a Patient, search Observation by patient and code, create and read
#       back an Observation), stops it, and exits 0 only if every check passed.
#
# Needs Node 20.19 or later and npm (Debian 13: apt-get install nodejs npm; Debian 12's Node 18 is too
# old for @medplum 4.5). npm ci installs exactly what package-lock.json names; from npm's cache when it
# holds them (--prefer-offline), else the registry.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "bench/peer/run.sh needs node and npm (Debian: apt-get install nodejs npm)" >&2; exit 2; }
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
  { echo "bench/peer/run.sh needs Node 20.19 or later, not $(node --version)" >&2; exit 2; }

mode=serve
server_args=()
load=
while [ $# -gt 0 ]; do
  case $1 in
    --install-only) mode=install; shift ;;
    --check) mode=check; shift ;;
    --load) load=$2; shift 2 ;;
    --port|--host|--base) server_args+=("$1" "$2"); shift 2 ;;
    *) echo "bench/peer/run.sh: unknown option $1 (see the header of bench/peer/run.sh)" >&2; exit 2 ;;
  esac
done

(cd "$here" && npm ci --silent --prefer-offline)

case $mode in
  install)
    exit 0 ;;
  serve)
    [ -n "$load" ] && server_args+=(--load "$load")
    exec node "$here/server.mjs" "${server_args[@]}" ;;
esac

# --check
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
if [ -z "$load" ]; then
  load=$work/population.ndjson
  python3 "$here/../population.py" --citizens 20 --seed 1 --out "$load" >/dev/null
fi
node "$here/server.mjs" --port 0 --load "$load" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 1200); do
  grep -q '^READY ' "$work/server.log" && break
  kill -0 "$server" 2>/dev/null || { echo "bench/peer/run.sh: the peer stopped; its log:" >&2; cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
grep -q '^READY ' "$work/server.log" ||
  { echo "bench/peer/run.sh: the peer did not start within 120 s; its log:" >&2; cat "$work/server.log" >&2; exit 1; }
ready=$(grep -m1 '^READY ' "$work/server.log")
echo "$ready"
base=${ready#*base=}
base=${base%% *}
node "$here/check.mjs" --base-url "$base" --load "$load"
