#!/usr/bin/env bash
# Sets everything up (as ./run.sh does), builds, and runs every test: the doctest suites through
# ctest, then the black-box conformance suite against a real `caregate serve` on a free port.
set -euo pipefail
cd "$(dirname "$0")"

./run.sh --setup-only

echo "== every option of caregate serve is documented in README.md"
for flag in $(build/caregate serve --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
  grep -q -- "\`$flag" README.md || { echo "README.md does not document $flag" >&2; exit 1; }
done

echo "== unit and integration tests (ctest)"
ctest --test-dir build --output-on-failure

echo "== conformance suite against a live server"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
build/caregate serve --db "$work/conformance.db" --listen "127.0.0.1:$port" --certs certs/dev \
  >"$work/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for _ in $(seq 1 100); do
  curl -s -o /dev/null --cacert certs/dev/ca.crt "https://localhost:$port/fhir/metadata" && break
  sleep 0.1
done

status=0
python3 conformance/run.py --base-url "https://localhost:$port/fhir" --cacert certs/dev/ca.crt \
  --cert certs/dev/client-A81001.crt --key certs/dev/client-A81001.key \
  --examples tests/data/r4-examples || status=$?

# The server must stop cleanly on SIGTERM (graceful shutdown).
kill -TERM "$server"
if ! wait "$server"; then
  echo "caregate serve did not stop cleanly; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
exit $status
