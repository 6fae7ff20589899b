#!/usr/bin/env bash
# Start-up on a large database: serves the cached database of a large synthetic population in place
# (100,000 citizens: about 10 million resources, 37 GB) with `caregate serve --plain`, times it from
# exec to the first 200 on /metadata, sends a few reads and searches as a GP clinician of A81001, and
# prints the start-up, the requests' latencies and the peak RSS (VmHWM) after each. Any answer that
# is not 2xx, or a search that finds nothing, fails the run and no figures are printed.
#
#   bench/startup.sh [--citizens N] [--seed S] [--mean-resources R] [--as-of DATE] [--build]
#
# The database is served in place, not copied (it is too large to copy): the server appends an audit
# record for each request to it, as bench/search.sh --in-place does. bench/run.sh runs this at the
# end when the 100,000-citizen database is cached. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

citizens=100000
seed=1
mean_resources=100
as_of=2026-11-01
build=0
citizens_per_kind=5 # citizens whose read, searches and $everything are sent
request_timeout=60  # seconds; a slower answer counts as an error
start_timeout=600   # seconds to wait for the first 200 on /metadata

usage() {
  cat <<EOF
Usage: bench/startup.sh [options]

  --citizens N         the population whose cached database is served (default $citizens)
  --seed S             the population's seed (default $seed)
  --mean-resources R   mean resources per citizen (default $mean_resources)
  --as-of DATE         the population's last day (default $as_of)
  --build              build the database if it is not cached (100,000 citizens: about 45 minutes on
                       2 cores, and 39 GB under bench/.data/); without it, a missing database is
                       reported as skipped and the script exits 0

Environment: CAREGATE (default build/caregate).
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --citizens) citizens=${2:?--citizens needs N}; shift 2 ;;
    --seed) seed=${2:?--seed needs S}; shift 2 ;;
    --mean-resources) mean_resources=${2:?--mean-resources needs R}; shift 2 ;;
    --as-of) as_of=${2:?--as-of needs a date}; shift 2 ;;
    --build) build=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/startup.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$citizens" =~ ^[0-9]+$ && "$citizens" -gt 0 ]] || { echo "bench/startup.sh: --citizens needs a positive number" >&2; exit 2; }

caregate=${CAREGATE:-build/caregate}
[ -x "$caregate" ] || { echo "bench/startup.sh: $caregate is not built: run ./run.sh --setup-only, or set CAREGATE" >&2; exit 2; }
command -v curl >/dev/null || { echo "bench/startup.sh: curl is not installed" >&2; exit 2; }
[ -f certs/dev/token-signing.key ] || certs/make-dev-certs.sh --out certs/dev >/dev/null

# 1. The cached database (built only with --build), migrated once if its schema is older than
#    caregate's, so that what is measured is a start on a current schema.
population_dir "$citizens" "$seed" "$mean_resources" "$as_of"
if [ ! -f "$data/caregate.db" ] && [ "$build" = 0 ]; then
  echo "start-up on the $citizens-citizen database: skipped, it is not cached ($data);" \
    "build it with bench/startup.sh --citizens $citizens --build (100,000 citizens: about 45 minutes and 39 GB)"
  exit 0
fi
population_db "$citizens" "$seed" "$mean_resources" "$as_of" "$caregate"
db="$data/caregate.db"
resources=$(grep -o '^caregate import: [0-9]* resources' "$data/import.txt" | grep -o '[0-9]*' | head -n 1)
db_bytes=$(stat -c %s "$db")
wal_bytes=0
[ -f "$db-wal" ] && wal_bytes=$(stat -c %s "$db-wal")
run=bench/.data/startup
rm -rf "$run"
mkdir -p "$run"

# The share of the database file in the page cache before the start (nothing here empties it: a
# start after a reboot reads more from disk than one after another run).
cached_share=unknown
if command -v fincore >/dev/null; then
  cached_share=$(fincore --bytes --noheadings --output RES,SIZE "$db" 2>/dev/null |
    awk '$2 > 0 { printf "%.0f%%", 100 * $1 / $2 }') || cached_share=unknown
  [ -n "$cached_share" ] || cached_share=unknown
fi

# 2. The start: exec to the first 200 on /metadata, polled every 10 ms.
port=$(free_port)
begun=$(date +%s%N)
serve_plain "$caregate" "$port" "$db" "$run/server.log"
started=0
for _ in $(seq 1 $((start_timeout * 100))); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/metadata" || true)" = 200 ]; then started=1; break; fi
  kill -0 "$server" 2>/dev/null || { echo "bench/startup.sh: caregate serve stopped; its log:" >&2; cat "$run/server.log" >&2; exit 1; }
  sleep 0.01
done
[ "$started" = 1 ] || { echo "bench/startup.sh: $base/metadata did not answer 200 within $start_timeout s" >&2; exit 1; }
startup_ms=$((($(date +%s%N) - begun) / 1000000))
rss_start_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$server/status")

# 3. A few requests, one at a time, as a GP clinician of A81001 about citizens registered there (a
#    fixed pick spread over the population): the read, a search by code, the active prescriptions,
#    the whole record, and a search by family name and birth date.
token=$("$caregate" token --certs certs/dev --aud "$base" --org A81001 --role R8000 --user bench-gp-1 --ttl 7200)
python3 - "$data/targets.tsv" "$seed" "$citizens_per_kind" >"$run/requests.paths" <<'EOF'
import random, sys
targets, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = [line.rstrip("\n").split("\t") for line in open(targets, encoding="utf-8")]
rows = [r for r in rows if r[1] == "A81001" and r[5] and int(r[6]) > 0]
if not rows:
    sys.exit("bench/startup.sh: the population has no citizen registered with A81001 with observations and prescriptions")
rows = random.Random(seed).sample(rows, min(count, len(rows)))
for r in rows:
    print(f"Patient/{r[0]}")
    print(f"Observation?patient={r[0]}&code=http://loinc.org%7C{r[5].split(',')[0]}")
    print(f"MedicationRequest?patient={r[0]}&status=active")
    print(f"Patient/{r[0]}/$everything")
    print(f"Patient?family={r[2]}&birthdate={r[3]}")
EOF
problem=
: >"$run/latencies.tsv"
while read -r path; do
  out=$(curl -s -o "$run/answer.json" -w '%{http_code} %{time_total}' --max-time "$request_timeout" \
          -H "Authorization: Bearer $token" -H 'Accept: application/fhir+json' "$base/$path" || echo "000 0")
  read -r status took <<<"$out"
  if [[ ! "$status" =~ ^2 ]]; then
    problem="GET $path answered $status: $(head -c 400 "$run/answer.json" 2>/dev/null | tr '\n' ' ')"
    break
  fi
  if [[ "$path" == *'?'* || "$path" == *'$everything' ]] && ! python3 -c 'import json, sys
b = json.load(open(sys.argv[1], encoding="utf-8"))
sys.exit(0 if b.get("resourceType") == "Bundle" and b.get("entry") else 1)' "$run/answer.json"; then
    problem="GET $path answered $status but found nothing: $(head -c 400 "$run/answer.json" | tr '\n' ' ')"
    break
  fi
  printf '%s\t%s\n' "$took" "$path" >>"$run/latencies.tsv"
done <"$run/requests.paths"
rss_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$server/status")
stopping=$(date +%s%N)
stop_server
stop_ms=$((($(date +%s%N) - stopping) / 1000000))

# 4. The result.
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit+changes"
gib() { awk -v b="$1" 'BEGIN { printf "%.1f GiB", b / 1073741824 }'; }
echo
echo "caregate $commit, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "start-up on the $citizens-citizen database, in place: $resources resources (seed $seed), $(gib "$db_bytes") database + $(gib "$wal_bytes") WAL file; $cached_share of the database file in the page cache before the start"
[ -z "$migrated" ] || echo "  ($migrated)"
if [ -n "$problem" ]; then
  echo "  start-up (exec to the first 200 on /metadata, plain HTTP): $startup_ms ms"
  echo "bench/startup.sh: the requests FAILED (no figures are reported for them): $problem"
  exit 1
fi
echo "  start-up (exec to the first 200 on /metadata, plain HTTP): $startup_ms ms; peak RSS (VmHWM) then: $((rss_start_kb / 1024)) MiB"
sort -g "$run/latencies.tsv" | awk -F'\t' -v first="$(head -n 1 "$run/latencies.tsv" | cut -f1)" -v cit="$citizens_per_kind" '
  { t[NR] = $1; p[NR] = $2 }
  END { printf "  %d requests, one at a time (read, code search, active prescriptions, $everything, family and birth date; %d citizens): the first %.0f ms, median %.0f ms, slowest %.0f ms (GET %s)\n",
          NR, cit, first * 1000, t[int((NR + 1) / 2)] * 1000, t[NR] * 1000, p[NR] }'
echo "  peak RSS (VmHWM) after the requests: $((rss_kb / 1024)) MiB; the server stopped in $stop_ms ms"
