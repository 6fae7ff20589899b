#!/usr/bin/env bash
# The export benchmark: builds (once, cached) the database of a synthetic population (as
# bench/search.sh does), serves it with `caregate serve --plain` on loopback, and measures Bulk Data
# exports of the whole record (`$export`, every type):
#
#  - identifiable (the ICS's integration service) and pseudonymised (its population health platform)
#    export rates, in resources written to NDJSON per second from kick-off to the manifest, each
#    against the reference measured in the same run: reading every current version's stored JSON
#    straight from the database file (sqlite3, one statement, no checks, no network);
#  - the server's peak resident memory (VmHWM) after each export;
#  - reads (a GP reading Patient/X, wrk, 16 connections) without an export, and then while exports
#    run back to back: their p99 latency and rate, and the ratio of the two p99s.
#
#   bench/export.sh [--citizens N] [--seed S] [--mean-resources R] [--seconds S] [--connections N] [--in-place]
#
# See bench/README.md for what it measures and how to read it.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

citizens=1000
seed=1
mean_resources=100
seconds=10
connections=16
wrk_threads=2
as_of=2026-11-01
in_place=0

usage() {
  cat <<EOF
Usage: bench/export.sh [options]

  --citizens N         citizens in the synthetic population (default $citizens, about 100 resources each;
                       100000 makes the 10-million-resource database)
  --seed S             the population's seed (default $seed)
  --mean-resources R   mean resources per citizen (default $mean_resources)
  --seconds S          how long each read measurement runs (default $seconds)
  --connections N      the readers' connections (default $connections)
  --in-place           serve the cached database itself instead of a fresh copy (for a population too
                       large to copy; each export's job is cancelled afterwards, which deletes its files)

Environment: CAREGATE (default build/caregate), the executable to serve and import with.
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --citizens) citizens=${2:?--citizens needs N}; shift 2 ;;
    --seed) seed=${2:?--seed needs S}; shift 2 ;;
    --mean-resources) mean_resources=${2:?--mean-resources needs R}; shift 2 ;;
    --seconds) seconds=${2:?--seconds needs S}; shift 2 ;;
    --connections) connections=${2:?--connections needs N}; shift 2 ;;
    --in-place) in_place=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/export.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

caregate=${CAREGATE:-build/caregate}
[ -x "$caregate" ] || { echo "bench/export.sh: $caregate is not built: run ./run.sh --setup-only, or set CAREGATE" >&2; exit 2; }
for tool in wrk curl sqlite3; do
  command -v "$tool" >/dev/null || { echo "bench/export.sh: $tool is not installed (./run.sh --install $tool)" >&2; exit 2; }
done
[ -f certs/dev/token-signing.key ] && [ -f certs/dev/export-keys.json ] || certs/make-dev-certs.sh --out certs/dev >/dev/null

population_db "$citizens" "$seed" "$mean_resources" "$as_of" "$caregate"
run=bench/.data/export-run
rm -rf "$run"
mkdir -p "$run"
if [ "$in_place" = 1 ]; then
  db="$data/caregate.db"
else
  db="$run/caregate.db"
  cp --reflink=auto "$data/caregate.db" "$db"
fi
# The GP's citizens, for the reads.
awk -F'\t' '$2 == "A81001" && n < 2000 { print "Patient/" $1; n++ }' "$data/targets.tsv" >"$run/read.paths"
[ -s "$run/read.paths" ] || { echo "bench/export.sh: the population has no citizen of A81001" >&2; exit 1; }

# 1. The reference: every current live version's JSON read straight from the file, one statement.
echo "== reference: reading every current version's stored JSON with sqlite3"
begun=$(date +%s%N)
scanned=$(sqlite3 "file:$db?mode=ro" "SELECT v.json FROM resources r JOIN resource_versions v ON v.seq = r.seq
  WHERE r.deleted = 0 AND r.type <> 'AuditEvent'" | wc -l)
scan_seconds=$(awk -v ns=$(($(date +%s%N) - begun)) 'BEGIN { printf "%.3f", ns / 1e9 }')
scan_rate=$(awk -v n="$scanned" -v s="$scan_seconds" 'BEGIN { printf "%.0f", n / s }')
echo "   $scanned resources in $scan_seconds s: $scan_rate/s"

port=$(free_port)
serve_plain "$caregate" "$port" "$db" "$run/server.log"
await_server "$base/metadata" "$server" "$run/server.log" bench/export.sh
gp=$("$caregate" token --certs certs/dev --aud "$base" --org A81001 --role R8000 --user bench-gp-1 --ttl 7200)
identifiable=$("$caregate" token --certs certs/dev --aud "$base" --org QZZ --role system --user bench-system --ttl 7200)
pseudonymised=$("$caregate" token --certs certs/dev --aud "$base" --org QZZ --role analyst --user bench-platform --ttl 7200)

peak_rss_mib() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$server/status"; }
rss_at_start=$(peak_rss_mib)

# export TOKEN -> "resources seconds" of one whole export, kick-off to manifest; the job is then
# cancelled, which deletes its files.
export_once() {
  local token=$1 location status begun manifest count took
  begun=$(date +%s%N)
  location=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $token" -H 'Prefer: respond-async' \
    -H 'Accept: application/fhir+json' "$base/\$export" | tr -d '\r' | sed -n 's/^[Cc]ontent-[Ll]ocation: //p')
  [ -n "$location" ] || { echo "bench/export.sh: the kick-off gave no Content-Location" >&2; return 1; }
  while :; do
    status=$(curl -s -o "$run/manifest.json" -w '%{http_code}' -H "Authorization: Bearer $token" "$location")
    [ "$status" = 200 ] && break
    [ "$status" = 202 ] || { echo "bench/export.sh: polling answered $status: $(head -c 400 "$run/manifest.json")" >&2; return 1; }
    sleep 0.05
  done
  took=$(awk -v ns=$(($(date +%s%N) - begun)) 'BEGIN { printf "%.3f", ns / 1e9 }')
  count=$(python3 -c 'import json, sys; print(sum(o["count"] for o in json.load(open(sys.argv[1]))["output"]))' "$run/manifest.json")
  peak_rss_mib >"$run/export-rss" # the export's, before its files are deleted
  curl -s -o /dev/null -X DELETE -H "Authorization: Bearer $token" "$location"
  echo "$count $took"
}

# reads SECONDS -> wrk's RESULT line
reads() {
  PATHS="$run/read.paths" BASE_PATH=/fhir TOKEN="$gp" \
    wrk -t "$wrk_threads" -c "$connections" -d "${1}s" --timeout 10s -s bench/wrk/paths.lua "http://127.0.0.1:$port" 2>&1 |
    grep '^RESULT ' || echo "RESULT rps=0 p99_us=0 non_2xx=-1 socket_errors=-1"
}
value() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$2"; }

# The exports first, on a server that has served nothing else, so that its peak RSS is theirs.
declare -A count took rate rss
for kind in identifiable pseudonymised; do
  echo "== $kind export of the whole record"
  read -r count[$kind] took[$kind] < <(export_once "${!kind}")
  rate[$kind]=$(awk -v n="${count[$kind]}" -v s="${took[$kind]}" 'BEGIN { printf "%.0f", n / s }')
  rss[$kind]=$(cat "$run/export-rss")
  echo "   ${count[$kind]} resources in ${took[$kind]} s: ${rate[$kind]}/s; peak RSS ${rss[$kind]} MiB (after deleting its files: $(peak_rss_mib) MiB)"
done
rss[cancelled]=$(peak_rss_mib)

echo "== reads alone: $seconds s, $connections connections"
# Warmed up until two seconds of reads go without a refusal: after the exports have read the whole
# database through the page cache (on a database larger than memory, evicting the audit log's
# indexes the reads' records go into), the first seconds of reads measure the cold cache, not the
# steady state either measurement is of.
for warm in $(seq 1 30); do
  warmup=$(reads 2)
  [ "$(value non_2xx "$warmup")" = 0 ] && break
done
echo "   warmed up in $((2 * warm)) s (refused in the last 2 s: $(value non_2xx "$warmup"))"
alone=$(reads "$seconds")
echo "   $(value rps "$alone") req/s, p99 $(value p99_us "$alone") us, refused $(value non_2xx "$alone")"

echo "== reads while identifiable exports run back to back: $seconds s"
(
  end=$(($(date +%s) + seconds + 1))
  while [ "$(date +%s)" -lt "$end" ]; do export_once "$identifiable" >/dev/null || break; done
) &
exporter=$!
sleep 0.3
during=$(reads "$seconds")
wait "$exporter" || true
rss[during]=$(peak_rss_mib)
echo "   $(value rps "$during") req/s, p99 $(value p99_us "$during") us, refused $(value non_2xx "$during")"

for phase in alone during; do
  result=${!phase}
  if [ "$(value non_2xx "$result")" != 0 ] || [ "$(value socket_errors "$result")" != 0 ]; then
    echo "bench/export.sh: reads $phase FAILED (non-2xx $(value non_2xx "$result"), socket errors $(value socket_errors "$result")): no figures for reads;" \
      "the server's log says what they were ($run/server.log)" >&2
    exit 1
  fi
done

resources=$(grep -o '^caregate import: [0-9]* resources' "$data/import.txt" | grep -o '[0-9]*' || echo '?')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit+changes"
echo
echo "caregate $commit, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo "population: $citizens citizens, $resources resources (seed $seed); reads: a GP, $connections connections, $seconds s"
printf '%-44s %12s %10s %10s\n' measure 'value' 'vs ref' 'peak RSS'
printf '%-44s %12s %10s %10s\n' 'reference: stored JSON read by sqlite3' "$scan_rate/s" 1.000 -
printf '%-44s %12s %10s %10s\n' 'the server started, before any request' - - "$rss_at_start MiB"
for kind in identifiable pseudonymised; do
  printf '%-44s %12s %10s %10s\n' "$kind export (resources/s)" "${rate[$kind]}/s" \
    "$(awk -v a="${rate[$kind]}" -v b="$scan_rate" 'BEGIN { printf "%.3f", a / b }')" "${rss[$kind]} MiB"
done
printf '%-44s %12s %10s %10s\n' 'both exports cancelled (their files deleted)' - - "${rss[cancelled]} MiB"
printf '%-44s %12s %10s %10s\n' 'reads alone: p99' "$(awk -v u="$(value p99_us "$alone")" 'BEGIN { printf "%.2f ms", u / 1000 }')" 1.000 -
printf '%-44s %12s %10s %10s\n' 'reads during exports: p99' "$(awk -v u="$(value p99_us "$during")" 'BEGIN { printf "%.2f ms", u / 1000 }')" \
  "$(awk -v a="$(value p99_us "$during")" -v b="$(value p99_us "$alone")" 'BEGIN { printf "%.3f", a / b }')" "${rss[during]} MiB"
printf '%-44s %12s %10s %10s\n' 'reads alone: req/s' "$(value rps "$alone")" 1.000 -
printf '%-44s %12s %10s %10s\n' 'reads during exports: req/s' "$(value rps "$during")" \
  "$(awk -v a="$(value rps "$during")" -v b="$(value rps "$alone")" 'BEGIN { printf "%.3f", a / b }')" -
