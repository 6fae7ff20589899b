#!/usr/bin/env bash
# What holds reads back beside an export: serves the cached database of bench/export.sh in place,
# reads alone for 10 s, then starts an identifiable export and, once it has run for 15 s, reads
# beside it for 20 s, printing every 2 s the writer's state from the admin listener's /metrics (the
# reads' audit backlog, the write queue, groups committed and their total commit time) and `vmstat`
# (the disk's reads and writes, I/O wait) before and during. A probe for finding a cause, not a
# benchmark: it prints what it saw and how many requests the server refused (503), nothing more.
#
#   bench/export_probe.sh [--citizens N]     (default 100000: the 10-million-resource database)
#
# The database must have been built by bench/export.sh --citizens N first.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

citizens=100000
while [ $# -gt 0 ]; do
  case "$1" in
    --citizens) citizens=${2:?--citizens needs N}; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench/export_probe.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
caregate=${CAREGATE:-build/caregate}
population_dir "$citizens" 1 100 2026-11-01
[ -f "$data/caregate.db" ] || { echo "bench/export_probe.sh: no database in $data: run bench/export.sh --citizens $citizens first" >&2; exit 2; }
for tool in wrk curl vmstat; do
  command -v "$tool" >/dev/null || { echo "bench/export_probe.sh: $tool is not installed" >&2; exit 2; }
done
log=bench/.data/export-probe.log
paths=bench/.data/export-probe.paths
port=$(free_port)
admin=$(free_port)
base="http://127.0.0.1:$port/fhir"
"$caregate" serve --plain --listen "127.0.0.1:$port" --base-url "$base" --db "$data/caregate.db" --certs certs/dev \
  --patient-listen none --admin-listen "127.0.0.1:$admin" >"$log" 2>&1 &
server=$!
trap stop_server EXIT
await_server "$base/metadata" "$server" "$log" bench/export_probe.sh
gp=$("$caregate" token --certs certs/dev --aud "$base" --org A81001 --role R8000 --user bench-gp-1 --ttl 7200)
system=$("$caregate" token --certs certs/dev --aud "$base" --org QZZ --role system --user bench-system --ttl 7200)
awk -F'\t' '$2 == "A81001" && n < 2000 { print "Patient/" $1; n++ }' "$data/targets.tsv" >"$paths"

writer() {
  curl -s "http://127.0.0.1:$admin/metrics" |
    grep -E '^caregate_(audit_backlog|store_write_queue_jobs|store_groups_total|store_commit_duration_seconds_sum) ' |
    sed -E 's/^caregate_//' | tr '\n' ' '
  echo
}
reads() {
  PATHS="$paths" BASE_PATH=/fhir TOKEN="$gp" wrk -t 2 -c 16 -d "${1}s" --timeout 10s -s bench/wrk/paths.lua \
    "http://127.0.0.1:$port" 2>&1 | grep '^RESULT '
}

echo "== reads alone, 10 s"
writer
reads 10
writer
location=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $system" -H 'Prefer: respond-async' \
  -H 'Accept: application/fhir+json' "$base/\$export" | tr -d '\r' | sed -n 's/^[Cc]ontent-[Ll]ocation: //p')
echo "== an identifiable export started ($location); 15 s later, with no reads:"
sleep 15
vmstat 2 3 | sed -n '1,2p;4,5p'
writer
echo "== reads beside the export, 20 s"
reads 20 &
reader=$!
for i in $(seq 1 10); do
  sleep 2
  echo "t=$((i * 2))s $(writer)"
done
vmstat 1 3 | tail -2
wait "$reader"
curl -s -o /dev/null -X DELETE -H "Authorization: Bearer $system" "$location"
echo "requests refused (503) in the server's log: $(grep -c 'answered 503' "$log" || true)"
