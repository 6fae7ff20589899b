#!/usr/bin/env bash
# The ingest benchmark: loads a synthetic population through the API as transaction Bundles
# (bench/bundles.py over bench/population.py), with C concurrent clients POSTing to [base] of a fresh
# `caregate serve --plain` on loopback as the ICS's integration system, with durability on (the
# server's default synchronous=FULL: an answer means the data is on disk). Then checks that
# everything was stored with its references rewritten, and loads the same resources with
# `caregate import` into another fresh database, as the reference point. Prints one table; figures
# for errors are never printed: any answer or entry that is not 2xx fails the run, showing the first.
#
#   bench/ingest.sh [--citizens N] [--quick] [--connections C] [--seed S] [--mean-resources R]
#                   [--max-entries M] [--patient create|put] [--citizen-ref fullurl|literal|conditional]
#                   [--idempotent]
#
# See bench/README.md for what it measures and how to read it.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

citizens=1000
quick_citizens=200
seed=1
mean_resources=100
connections=8
max_entries=500
patient=create
citizen_ref=fullurl
idempotent=0
request_timeout=120 # seconds; a slower answer to one Bundle counts as an error
citizens_given=0
quick=0

usage() {
  cat <<EOF
Usage: bench/ingest.sh [options]

  --citizens N         citizens in the synthetic population (default $citizens, about 100 resources each)
  --quick              $quick_citizens citizens (unless --citizens is given)
  --connections C      concurrent clients, each with its own connection (default $connections)
  --seed S             the population's seed (default $seed)
  --mean-resources R   mean resources per citizen (default $mean_resources)
  --max-entries M      most entries in one Bundle (default $max_entries); larger records are split
  --patient create|put the Patient as a conditional create (default) or PUT Patient/{nhs}
  --citizen-ref fullurl|literal|conditional
                       how items reference their citizen (default fullurl; see bench/bundles.py)
  --idempotent         every item a conditional create on its source id (ifNoneExist)

Environment: CAREGATE (default build/caregate), the executable to serve and import with.
Work files go to bench/.data/ingest/ (ignored by git), replaced by each run.
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --citizens) citizens=${2:?--citizens needs N}; citizens_given=1; shift 2 ;;
    --quick) quick=1; shift ;;
    --connections) connections=${2:?--connections needs C}; shift 2 ;;
    --seed) seed=${2:?--seed needs S}; shift 2 ;;
    --mean-resources) mean_resources=${2:?--mean-resources needs R}; shift 2 ;;
    --max-entries) max_entries=${2:?--max-entries needs M}; shift 2 ;;
    --patient) patient=${2:?--patient needs create or put}; shift 2 ;;
    --citizen-ref) citizen_ref=${2:?--citizen-ref needs fullurl, literal or conditional}; shift 2 ;;
    --idempotent) idempotent=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/ingest.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[ "$quick" = 1 ] && [ "$citizens_given" = 0 ] && citizens=$quick_citizens
for pair in "citizens:$citizens" "connections:$connections" "max-entries:$max_entries"; do
  [[ "${pair#*:}" =~ ^[0-9]+$ && "${pair#*:}" -gt 0 ]] || { echo "bench/ingest.sh: --${pair%%:*} needs a positive number" >&2; exit 2; }
done
case "$patient" in create|put) ;; *) echo "bench/ingest.sh: --patient is create or put" >&2; exit 2 ;; esac
case "$citizen_ref" in fullurl|literal|conditional) ;; *) echo "bench/ingest.sh: --citizen-ref is fullurl, literal or conditional" >&2; exit 2 ;; esac

caregate=${CAREGATE:-build/caregate}
[ -x "$caregate" ] || { echo "bench/ingest.sh: $caregate is not built: run ./run.sh --setup-only, or set CAREGATE" >&2; exit 2; }
command -v curl >/dev/null || { echo "bench/ingest.sh: curl is not installed" >&2; exit 2; }
[ -f certs/dev/token-signing.key ] || certs/make-dev-certs.sh --out certs/dev >/dev/null

# 1. The Bundles, and the same resources as NDJSON for caregate import (a few seconds for 1,000
#    citizens: made afresh each run).
run=bench/.data/ingest
rm -rf "$run"
mkdir -p "$run"
bundle_flags=(--citizens "$citizens" --seed "$seed" --mean-resources "$mean_resources" --max-entries "$max_entries"
              --patient "$patient" --citizen-ref "$citizen_ref")
[ "$idempotent" = 1 ] && bundle_flags+=(--idempotent)
echo "== the Bundles: $citizens citizens (seed $seed), at most $max_entries entries a Bundle"
python3 bench/bundles.py "${bundle_flags[@]}" --out "$run/bundles.ndjson" --resources "$run/resources.ndjson" \
  2>&1 | tee "$run/bundles.txt"

# 2. The server: plain HTTP on loopback (TLS is not what this measures), on an empty database with
#    the default durability, and the token of the ICS's integration system (it writes for any citizen).
port=$(free_port)
serve_plain "$caregate" "$port" "$run/ingest.db" "$run/server.log"
await_server "$base/metadata" "$server" "$run/server.log" bench/ingest.sh
token=$("$caregate" token --certs certs/dev --aud "$base" --org QZZ --role system --user bench-ingest --ttl 7200)

# 3. The load (bench/load_bundles.py, shared with bench/run.sh): the Organizations first (not
#    timed), then every citizen's Bundles, each sent once, a citizen's parts in order by one client.
#    Any answer that is not 200 with a transaction-response whose every entry is 2xx stops the run.
# 4. Then what was stored: each type's count grew by exactly what the Bundles carry, and the
#    references of a few citizens' records are each an id the server assigned (no urn:uuid, no
#    search URL left), pointing at a resource of the same citizen. The largest record is one of
#    them, so that references between its parts are checked too.
#    Prints "RESULT key=value ..." (latencies in microseconds) then "VERIFIED <what>", or "FAILED <what>".
echo "== POST [base]: $connections clients, then what was stored"
python3 bench/load_bundles.py "$run/bundles.ndjson" --base "$base" --token "$token" --connections "$connections" \
  --timeout "$request_timeout" --verify >"$run/load.txt" 2>&1 || true
cat "$run/load.txt"
result=$(grep '^RESULT ' "$run/load.txt" || true)
problem=$(sed -n 's/^FAILED //p' "$run/load.txt" | head -n 1 | head -c 600)
if [ -z "$problem" ] && { [ -z "$result" ] || ! grep -q '^VERIFIED ' "$run/load.txt"; }; then
  problem="the client gave no result: $(head -c 400 "$run/load.txt")"
fi
stop_server

# 5. The reference point: caregate import of the same resources into an empty database, alone on the
#    machine (the server stopped), with the same durability.
echo "== caregate import of the same resources"
import_line=$("$caregate" import "$run/resources.ndjson" --db "$run/import.db" 2>"$run/import.err" | tail -n 1) || true
import_rate=$(sed -nE 's/.* ([0-9]+) resources\/s$/\1/p' <<<"$import_line")
import_resources=$(sed -nE 's/^caregate import: ([0-9]+) resources stored.*/\1/p' <<<"$import_line")
import_seconds=$(sed -nE 's/.* in ([0-9.]+) s, .*/\1/p' <<<"$import_line")
echo "   ${import_line:-(no result: $(head -c 400 "$run/import.err"))}"

# 6. The table.
value() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$result"; }
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit+changes"
read -r bundles_made entries_made split_made < <(sed -nE 's/^bundles.py: [0-9]+ citizens, ([0-9]+) bundles, ([0-9]+) entries \(([0-9]+) records.*/\1 \2 \3/p' "$run/bundles.txt") || true
echo
echo "caregate $commit, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo "population: $citizens citizens, $entries_made resources (seed $seed) in $bundles_made transaction Bundles of at most $max_entries entries ($split_made records split); patient $patient, citizen references $citizen_ref$([ "$idempotent" = 1 ] && echo ', idempotent items')"
echo "caller: system (QZZ); $connections clients; Prefer: return=minimal; synchronous=FULL"
printf '%-36s %11s %10s %9s %9s %9s %10s\n' load 'resources/s' 'bundles/s' 'p50 ms' 'p99 ms' 'seconds' 'vs import'
if [ -n "$problem" ]; then
  printf '%-36s %11s %10s %9s %9s %9s %10s\n' 'POST [base] transaction' FAILED - - - - -
else
  ratio=-
  [ -n "$import_rate" ] && ratio=$(awk -v a="$(value resources_per_s)" -v b="$import_rate" 'BEGIN { printf "%.3f", a / b }')
  printf '%-36s %11.0f %10.1f %9.2f %9.2f %9.1f %10s\n' 'POST [base] transaction' "$(value resources_per_s)" \
    "$(value bundles_per_s)" "$(awk -v u="$(value p50_us)" 'BEGIN { print u / 1000 }')" \
    "$(awk -v u="$(value p99_us)" 'BEGIN { print u / 1000 }')" "$(value seconds)" "$ratio"
fi
if [ -n "$import_rate" ]; then
  printf '%-36s %11.0f %10s %9s %9s %9.1f %10s\n' 'caregate import (same resources)' "$import_rate" - - - "$import_seconds" 1.000
else
  printf '%-36s %11s %10s %9s %9s %9s %10s\n' 'caregate import (same resources)' FAILED - - - - -
fi
status=0
if [ -n "$problem" ]; then
  echo
  echo "bench/ingest.sh: the load FAILED (no figures are reported for it): $problem"
  status=1
fi
if [ -z "$import_rate" ] || [ "$import_resources" != "$entries_made" ]; then
  echo "bench/ingest.sh: caregate import FAILED: ${import_line:-$(head -c 600 "$run/import.err")}"
  status=1
fi
exit $status
