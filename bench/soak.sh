#!/usr/bin/env bash
# The soak test: caregate served as in production (`caregate serve`, TLS with a client certificate,
# default options: durable storage, synchronous=FULL) under a steady mixed load for a long time (30
# minutes by default), to find what only time shows: memory that grows, errors that appear under
# sustained load, latency that creeps up (a growing audit log, WAL or index, fragmentation).
#
#   bench/soak.sh [--minutes N] [--connections C] [--citizens N] [--window S]
#
# The load: wrk (bench/wrk/soak.lua, 2 threads, C connections, default 16, each keep-alive over TLS
# presenting client-A81001's certificate and a bearer token of a GP clinician of A81001) on a copy of
# the cached database of a synthetic population (bench/common.sh's population_db, default 1,000
# citizens), with these shares of the requests (bench/soak_requests.py makes the lists):
#   20% GET Patient/X                 8% GET Patient/X/_history/1
#   14% GET Observation/Y             6% GET Observation/Y/_history/1
#   16% GET Observation?patient=X&code=http://loinc.org|C
#   12% GET MedicationRequest?patient=X&status=active
#    8% GET Patient/X/$everything
#    8% POST Observation (a heart rate)
#    6% PUT Observation/Y (a stored Observation, its value changed: versions grow)
#    2% POST [base] transaction (two new vital signs and a PUT of a stored Observation)
# The writes go to a quarter of the citizens and the searches, Observation reads and $everything to
# the others, so that the records searched do not grow during the run (which would slow them for a
# reason that is not a fault); the database as a whole, the audit log and the version history do.
#
# The run is cut into windows (60 s, or 20 s when --minutes is under 10; --window S), one wrk run
# each, back to back. The server's VmRSS (/proc/PID/status) is sampled every 10 s and at the end of
# each window. It prints one row a window: its end (minutes into the load), requests/s, errors,
# p50 and p99 latency (ms), the largest RSS sampled in it (MiB); then three verdicts:
#   1. no errors: every answer of every window is 2xx, with no socket error and no timeout (10 s);
#   2. RSS flat: the largest RSS sampled in the last third of the load (by time) is at most
#      1.10 x the largest sampled in the first third + 16 MiB (SQLite's page caches, up to 64 MiB for
#      the writer and 8 MiB for each of 8 readers, fill in the first minutes; then nothing may grow);
#   3. latency flat: with the first window left out as warm-up and k = ceil(m / 3) of the m windows
#      left, the median of the last k windows' p99 is at most 1.5 x the median of the first k
#      windows' p99 + 2 ms (medians, so that one window slowed by other load on a shared machine
#      does not decide).
# Then it checks that the server still answers GET /metadata, that a PUT target's version grew, that
# the server stops within 30 s of SIGTERM with exit status 0, and that `caregate audit verify`
# passes on the database afterwards.
#
# Exit status: 0 when the three verdicts hold and every check passes; 1 otherwise (the failures are
# named); 2 for a usage or set-up error. Work files (the copy of the database, the request lists,
# the server's log, rss.tsv, windows.tsv, table.txt) are in bench/.data/soak/, replaced by each run;
# the copy grows with the load (about 450 MiB a minute at 5,400 requests/s: the audit log, the
# versions and their index rows; 13 GB in a 30-minute run), so a 30-minute run needs some 15 GB free there.
# Environment: CAREGATE (default build/caregate).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

minutes=30
connections=16
citizens=1000
seed=1
mean_resources=100
as_of=2026-11-01 # the population's last day, as bench/run.sh and bench/search.sh
window=
request_timeout=10 # seconds; a slower answer is a timeout, an error
rss_every=10       # seconds between RSS samples
rss_factor=1.10
rss_allowance_mib=16
latency_factor=1.5
latency_allowance_ms=2
stop_seconds=30
mix="patient_read=20,patient_vread=8,observation_read=14,observation_vread=6,observation_search=16"
mix+=",medication_search=12,everything=8,create=8,update=6,transaction=2"

usage() {
  cat <<EOF
Usage: bench/soak.sh [--minutes N] [--connections C] [--citizens N] [--window S]

  --minutes N      minutes of load (default $minutes)
  --connections C  wrk's connections (default $connections)
  --citizens N     citizens in the synthetic population (default $citizens; its database is cached)
  --window S       seconds a window (default 60, or 20 when --minutes is under 10)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=${2:?--minutes needs N}; shift 2 ;;
    --connections) connections=${2:?--connections needs C}; shift 2 ;;
    --citizens) citizens=${2:?--citizens needs N}; shift 2 ;;
    --window) window=${2:?--window needs S}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/soak.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[ -n "$window" ] || { window=60; [ "$minutes" -ge 10 ] 2>/dev/null || window=20; }
for n in "$minutes" "$connections" "$citizens" "$window"; do
  [[ "$n" =~ ^[0-9]+$ && "$n" -gt 0 ]] || { echo "bench/soak.sh: '$n' is not a positive number" >&2; exit 2; }
done
windows=$((minutes * 60 / window))
[ "$windows" -ge 3 ] || { echo "bench/soak.sh: $minutes minutes make $windows windows of $window s; 3 at least" >&2; exit 2; }

# What it needs beyond ./run.sh's (as bench/run.sh): wrk, and gcc and libssl-dev for the client-certificate shim.
./run.sh --install wrk gcc libssl-dev curl python3
caregate=${CAREGATE:-build/caregate}
[ -x "$caregate" ] || { echo "bench/soak.sh: $caregate is not built: run ./run.sh --setup-only, or set CAREGATE" >&2; exit 2; }
[ -f certs/dev/token-signing.key ] || certs/make-dev-certs.sh --out certs/dev >/dev/null
client_cert=certs/dev/client-A81001.crt
client_key=certs/dev/client-A81001.key
[ -f "$client_cert" ] || { echo "bench/soak.sh: $client_cert is missing: run certs/make-dev-certs.sh --out certs/dev" >&2; exit 2; }
tls_curl=(--cacert certs/dev/ca.crt --cert "$client_cert" --key "$client_key")

run=bench/.data/soak
rm -rf "$run"
mkdir -p "$run/lists"
cc -shared -fPIC -O2 -o "$run/client_cert.so" bench/wrk/client_cert.c -ldl -lssl

# The database: the population's, built once and cached (as bench/run.sh's), copied, as the run writes.
population_db "$citizens" "$seed" "$mean_resources" "$as_of" "$caregate"
db="$run/caregate.db"
cp --reflink=auto "$data/caregate.db" "$db"
[ -f "$data/caregate.db-wal" ] && cp --reflink=auto "$data/caregate.db-wal" "$db-wal"
db_mib() { du -cm "$db"* | tail -n 1 | cut -f1; }
db_before=$(db_mib)

# The server, with caregate serve's defaults (no patient-facing listener: its port could be taken).
port=$(free_port)
base="https://localhost:$port/fhir"
url="https://127.0.0.1:$port"
"$caregate" serve --listen "127.0.0.1:$port" --base-url "$base" --db "$db" --certs certs/dev --patient-listen none \
  >"$run/server.log" 2>&1 &
server=$!
sampler=
cleanup() {
  [ -z "$sampler" ] || kill "$sampler" 2>/dev/null || true
  stop_server
}
trap cleanup EXIT
await_server "$base/metadata" "$server" "$run/server.log" bench/soak.sh "${tls_curl[@]}"
token=$("$caregate" token --certs certs/dev --aud "$base" --org A81001 --role R8000 --user soak-gp-1 \
          --ttl $((minutes * 60 + 3600)))
python3 bench/soak_requests.py "$data/targets.tsv" "$run/lists" --base "$base" --token "$token" --seed "$seed" \
  --cacert certs/dev/ca.crt --cert "$client_cert" --key "$client_key"

# sample: one line of rss.tsv: seconds since the epoch, VmRSS, RssAnon, RssFile (KiB).
sample() {
  awk -v t="$(date +%s)" '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 }
    END { if (r != "") print t, r, a, f }' "/proc/$server/status" >>"$run/rss.tsv" 2>/dev/null || true
}
( while kill -0 "$server" 2>/dev/null; do sample; sleep "$rss_every"; done ) &
sampler=$!

echo "== soak: $minutes min of mixed load ($windows windows of $window s), $connections connections, TLS" \
  "with client certificate, on $citizens citizens; caregate pid $server"
row_format='%6s %8s %10s %7s %9s %9s %8s\n'
# shellcheck disable=SC2059 # one format for the header and the rows
printf "$row_format" window 'at min' 'req/s' errors 'p50 ms' 'p99 ms' 'RSS MiB' | tee "$run/table.txt"
wrk_env=(BASE_PATH=/fhir TOKEN="$token" LISTS="$run/lists" MIX="$mix" LD_PRELOAD="$PWD/$run/client_cert.so"
         WRK_CLIENT_CERT="$client_cert" WRK_CLIENT_KEY="$client_key")
threads=2
[ "$connections" -lt 2 ] && threads=1
first_error=
load_start=$(date +%s)
: >"$run/windows.tsv"
for w in $(seq 1 "$windows"); do
  begun=$(date +%s)
  output=$(env "${wrk_env[@]}" wrk -t "$threads" -c "$connections" -d "${window}s" --timeout "${request_timeout}s" \
             -s bench/wrk/soak.lua "$url" 2>&1 || true)
  ended=$(date +%s)
  sample
  printf '%s\n' "$output" >"$run/wrk-$w.txt"
  result=$(grep '^RESULT ' <<<"$output" || true)
  rss_kib=$(awk -v a="$begun" -v b="$ended" '$1 >= a && $1 <= b && $2 > m { m = $2 } END { print m + 0 }' "$run/rss.tsv")
  if [ -z "$result" ]; then
    # No figures: wrk failed. The window counts as one error, and its output is kept.
    [ -n "$first_error" ] || first_error="window $w: wrk gave no result: $(head -c 400 <<<"$output" | tr '\n' ' ')"
    printf '%s\t%s\t%s\t0\t1\t0\t0\t%s\t0\n' "$w" "$((begun - load_start))" "$((ended - load_start))" "$rss_kib" \
      >>"$run/windows.tsv"
  else
    value() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$result"; }
    errors=$(($(value non_2xx) + $(value socket_errors)))
    [ "$(value requests)" != 0 ] || errors=$((errors + 1))
    if [ "$errors" != 0 ] && [ -z "$first_error" ]; then
      first_error="window $w: $(value non_2xx) answers not 2xx, $(value socket_errors) socket errors or timeouts"
      first_error+="; the first error: $(sed -n 's/^FIRST_ERROR //p' <<<"$output" | head -c 400)"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$((begun - load_start))" "$((ended - load_start))" "$(value rps)" \
      "$errors" "$(value p50_us)" "$(value p99_us)" "$rss_kib" "$(value requests)" >>"$run/windows.tsv"
  fi
  tail -n 1 "$run/windows.tsv" | awk -F'\t' -v f="$row_format" '{
    printf f, $1, sprintf("%.2f", $3 / 60), sprintf("%.0f", $4), $5, sprintf("%.2f", $6 / 1000), sprintf("%.2f", $7 / 1000),
      sprintf("%.0f", $8 / 1024) }' | tee -a "$run/table.txt"
done
load_end=$(date +%s)

# The verdicts, from windows.tsv and rss.tsv.
set +e
python3 - "$run/windows.tsv" "$run/rss.tsv" "$load_start" "$load_end" "$rss_factor" "$rss_allowance_mib" \
  "$latency_factor" "$latency_allowance_ms" <<'EOF' | tee -a "$run/table.txt"
import math, statistics, sys
windows_file, rss_file = sys.argv[1], sys.argv[2]
start, end = int(sys.argv[3]), int(sys.argv[4])
rss_factor, rss_allowance = float(sys.argv[5]), float(sys.argv[6])
latency_factor, latency_allowance = float(sys.argv[7]), float(sys.argv[8])
rows = [line.rstrip("\n").split("\t") for line in open(windows_file) if line.strip()]
failed = []
print()
errors = sum(int(r[4]) for r in rows)
requests = sum(int(r[8]) for r in rows)
ok = errors == 0
print(f"1. no errors: {'PASS' if ok else 'FAIL'}: {errors} errors (answers not 2xx, socket errors, timeouts over "
      f"10 s) in {requests} requests")
if not ok:
    failed.append("errors")

samples = [(int(t), int(kib) / 1024) for t, kib, *_ in (line.split() for line in open(rss_file)) if start <= int(t) <= end]
third = (end - start) / 3
first = [m for t, m in samples if t < start + third]
last = [m for t, m in samples if t >= start + 2 * third]
if first and last:
    limit = max(first) * rss_factor + rss_allowance
    ok = max(last) <= limit
    print(f"2. RSS flat: {'PASS' if ok else 'FAIL'}: the largest RSS of the last third {max(last):.0f} MiB "
          f"{'<=' if ok else '>'} "
          f"{rss_factor:.2f} x the largest of the first third ({max(first):.0f} MiB) + {rss_allowance:.0f} MiB = {limit:.0f} MiB"
          f" ({len(samples)} samples; from {samples[0][1]:.0f} to {samples[-1][1]:.0f} MiB)")
else:
    ok = False
    print(f"2. RSS flat: FAIL: too few RSS samples ({len(first)} in the first third, {len(last)} in the last)")
if not ok:
    failed.append("RSS flat")

measured = rows[1:]
k = math.ceil(len(measured) / 3)
p99_first = statistics.median(int(r[6]) / 1000 for r in measured[:k])
p99_last = statistics.median(int(r[6]) / 1000 for r in measured[-k:])
limit = p99_first * latency_factor + latency_allowance
ok = p99_last <= limit
print(f"3. latency flat: {'PASS' if ok else 'FAIL'}: the median p99 of the last {k} windows {p99_last:.2f} ms "
      f"{'<=' if ok else '>'} "
      f"{latency_factor} x the median p99 of the first {k} after the warm-up window ({p99_first:.2f} ms) + "
      f"{latency_allowance:.0f} ms = {limit:.2f} ms")
p50_first = statistics.median(int(r[5]) / 1000 for r in measured[:k])
p50_last = statistics.median(int(r[5]) / 1000 for r in measured[-k:])
rps_first = statistics.median(float(r[3]) for r in measured[:k])
rps_last = statistics.median(float(r[3]) for r in measured[-k:])
print(f"   (for information, the same windows' medians: p50 {p50_first:.2f} -> {p50_last:.2f} ms, "
      f"requests/s {rps_first:.0f} -> {rps_last:.0f})")
if not ok:
    failed.append("latency flat")
if failed:
    print("verdicts FAILED: " + ", ".join(failed))
sys.exit(1 if failed else 0)
EOF
verdicts=${PIPESTATUS[0]}
set -e
problems=()
say() { echo "$@" | tee -a "$run/table.txt"; }
[ "$verdicts" = 0 ] || problems+=("verdicts")
[ -z "$first_error" ] || say "first error: $first_error"

# The server after the load: alive, answering, and its updates made versions.
kill "$sampler" 2>/dev/null || true
sampler=
status=$(curl -s -o /dev/null -w '%{http_code}' "${tls_curl[@]}" "$base/metadata" || true)
if kill -0 "$server" 2>/dev/null && [ "$status" = 200 ]; then
  say "server alive after the load: PASS (GET /metadata answered 200)"
else
  say "server alive after the load: FAIL (GET /metadata answered $status; the server's log: $run/server.log)"
  problems+=("alive")
fi
updated=$(head -n 1 "$run/lists/update.tsv" | cut -f2)
version=$(curl -s "${tls_curl[@]}" -H "Authorization: Bearer $token" "$base/$updated" |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["meta"]["versionId"])' 2>/dev/null || echo none)
if [[ "$version" =~ ^[0-9]+$ && "$version" -gt 1 ]]; then
  say "updates made versions: PASS ($updated is at version $version)"
else
  say "updates made versions: FAIL ($updated is at version $version)"
  problems+=("versions")
fi

# A clean stop: SIGTERM, then exit status 0 within $stop_seconds s.
kill -TERM "$server" 2>/dev/null || true
stopped=0
for _ in $(seq 1 $((stop_seconds * 10))); do
  kill -0 "$server" 2>/dev/null || { stopped=1; break; }
  sleep 0.1
done
if [ "$stopped" = 1 ]; then
  set +e; wait "$server"; exit_status=$?; set -e
else
  kill -KILL "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  exit_status="none: still running after $stop_seconds s, killed"
fi
server=
if [ "$exit_status" = 0 ]; then
  say "clean stop on SIGTERM: PASS (exit status 0)"
else
  say "clean stop on SIGTERM: FAIL (exit status $exit_status; the server's log: $run/server.log)"
  problems+=("stop")
fi

if verified=$("$caregate" audit verify --db "$db" 2>&1); then
  say "caregate audit verify: PASS ($verified)"
else
  say "caregate audit verify: FAIL ($verified)"
  problems+=("audit verify")
fi

say "the database: $db_before MiB before the load, $(db_mib) MiB after"
if [ ${#problems[@]} -gt 0 ]; then
  say "bench/soak.sh: FAILED: ${problems[*]}"
  exit 1
fi
say "bench/soak.sh: PASSED"
