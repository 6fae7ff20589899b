#!/usr/bin/env bash
# The benchmark suite: measures, in one run, the ceiling probe (caregate's network stack
# answering a fixed Patient, over TLS with a client certificate and over plain HTTP) and caregate on a
# database of a synthetic population, with wrk, and prints one table in which every figure is also a
# share of the ceiling measured in the same run (other load on the machine then moves both alike).
# Figures for errors are never printed: a scenario with any answer that is not 2xx fails.
#
#   bench/run.sh [--quick] [--citizens N] [--seconds S] [--connections "1 16 64"] [--no-large-startup]
#                [--engine sqlite|postgresql]
#
# See bench/README.md ("The suite") for what each row measures and how to read the table.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

citizens=10000
quick_citizens=1000
seed=1
mean_resources=100
as_of=2026-11-01 # the population's last day (population.py --as-of), as bench/search.sh
seconds=10
connection_counts="1 16 64"
paths_per_scenario=2000
request_timeout=10 # seconds; a slower answer counts as an error
quick=0
engine=sqlite
citizens_given=0
seconds_given=0
connections_given=0
large_citizens=100000 # the population of bench/startup.sh's measurement, run at the end when it is cached
large_startup=1
transaction_min_seconds=3 # a transaction row's shortest time: a Bundle takes a few hundred ms to answer
transaction_citizens_per_second=50 # new citizens made ready for each second of a transaction row
transaction_timeout=120 # seconds; a slower answer to one Bundle counts as an error

usage() {
  cat <<EOF
Usage: bench/run.sh [options]

  --quick              $quick_citizens citizens, 16 connections only, 5 s a scenario (under 5 minutes)
  --citizens N         citizens in the synthetic population (default $citizens, about 100 resources each)
  --seconds S          seconds a scenario (default $seconds)
  --connections "C..." connection counts, each scenario at each (default "$connection_counts")
  --no-large-startup   skip bench/startup.sh on the cached $large_citizens-citizen database at the end
  --engine E           the storage engine caregate serves from: sqlite (default) or postgresql (a
                       throwaway PostgreSQL 15 cluster of the run's own, tests/support/postgresql.sh,
                       the population moved into it with caregate migrate; no large start-up)

Environment: CAREGATE (default build/caregate) and CEILING_PROBE (default the ceiling_probe built
beside it, bench/ceiling/ceiling_probe in the same build directory).
The database is built once per population under bench/.data/ (as bench/search.sh, sharing its cache);
each run works on a copy in bench/.data/suite/.
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --citizens) citizens=${2:?--citizens needs N}; citizens_given=1; shift 2 ;;
    --seconds) seconds=${2:?--seconds needs S}; seconds_given=1; shift 2 ;;
    --connections) connection_counts=${2:?--connections needs a list}; connections_given=1; shift 2 ;;
    --no-large-startup) large_startup=0; shift ;;
    --engine) engine=${2:?--engine needs sqlite or postgresql}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ "$quick" = 1 ]; then
  [ "$citizens_given" = 1 ] || citizens=$quick_citizens
  [ "$seconds_given" = 1 ] || seconds=5
  [ "$connections_given" = 1 ] || connection_counts=16
fi
case "$engine" in
  sqlite|postgresql) ;;
  *) echo "bench/run.sh: --engine takes sqlite or postgresql, not '$engine'" >&2; exit 2 ;;
esac
[ "$engine" = sqlite ] || large_startup=0 # bench/startup.sh serves SQLite files in place
for n in "$citizens" "$seconds" $connection_counts; do
  [[ "$n" =~ ^[0-9]+$ && "$n" -gt 0 ]] || { echo "bench/run.sh: '$n' is not a positive number" >&2; exit 2; }
done

# Debian packages the suite needs beyond ./run.sh's: wrk drives every scenario; gcc and libssl-dev
# build the shim that lets wrk present a client certificate (bench/wrk/client_cert.c).
./run.sh --install wrk gcc libssl-dev curl python3

caregate=${CAREGATE:-build/caregate}
[ -x "$caregate" ] || { echo "bench/run.sh: $caregate is not built: run ./run.sh --setup-only, or set CAREGATE" >&2; exit 2; }
probe=${CEILING_PROBE:-$(dirname "$caregate")/bench/ceiling/ceiling_probe}
if [ ! -x "$probe" ] && [ -z "${CEILING_PROBE:-}" ] && [ -f "$(dirname "$caregate")/build.ninja" ]; then
  cmake --build "$(dirname "$caregate")" --target ceiling_probe >/dev/null
fi
[ -x "$probe" ] || { echo "bench/run.sh: $probe is not built: cmake --build build --target ceiling_probe, or set CEILING_PROBE" >&2; exit 2; }
[ -f certs/dev/token-signing.key ] || certs/make-dev-certs.sh --out certs/dev >/dev/null
# The caller: a GP clinician of A81001, with that practice's client certificate on TLS; for the
# transaction ingest, the ICS's integration system (QZZ), with the ICS's certificate.
client_cert=certs/dev/client-A81001.crt
client_key=certs/dev/client-A81001.key
system_cert=certs/dev/client-QZZ.crt
system_key=certs/dev/client-QZZ.key
for f in "$client_cert" "$system_cert"; do
  [ -f "$f" ] || { echo "bench/run.sh: $f is missing: run certs/make-dev-certs.sh --out certs/dev" >&2; exit 2; }
done

run=bench/.data/suite
rm -rf "$run"
mkdir -p "$run"
cc -shared -fPIC -O2 -o "$run/client_cert.so" bench/wrk/client_cert.c -ldl -lssl

# 1. The database, built once per population exactly as bench/search.sh builds it (the same cache
#    directory, so either script reuses the other's; a cache older than caregate's schema is migrated
#    in place once, and says so), then copied: the run appends audit records and creates resources,
#    which must not carry over into the next run.
population_db "$citizens" "$seed" "$mean_resources" "$as_of" "$caregate"
resources=$(grep -o '^caregate import: [0-9]* resources' "$data/import.txt" | grep -o '[0-9]*' | head -n 1)
db="$run/caregate.db"
cp --reflink=auto "$data/caregate.db" "$db"
[ -f "$data/caregate.db-wal" ] && cp --reflink=auto "$data/caregate.db-wal" "$db-wal"
pg_dir=""
if [ "$engine" = postgresql ]; then
  # The same population in a throwaway cluster: caregate migrate copies the copy, every row as stored.
  ./run.sh --install postgresql-15
  pg_dir=$(mktemp -d) # the cluster runs as the postgres user, which must reach its directory
  # shared_buffers as PostgreSQL's documentation starts a dedicated server: a quarter of the memory,
  # here at most 4 GB (the tests' 128 MB left the writer's index pages to the OS's cache).
  shared_mb=$(awk '/^MemTotal:/ { mb = int($2 / 1024 / 4); print (mb > 4096 ? 4096 : mb) }' /proc/meminfo)
  pg_uri=$(CAREGATE_PG_SHARED_BUFFERS="${shared_mb}MB" tests/support/postgresql.sh start "$pg_dir")
  "$caregate" migrate --from "$db" --to "$pg_uri" >"$run/migrate.txt"
  # The move dirties every page it writes (and its VACUUM FREEZE each again): a checkpoint now writes
  # them, as a server that has run since its load has, rather than during a scenario.
  psql -qAt "$pg_uri" -c CHECKPOINT >/dev/null
  db="$pg_uri"
fi

# 2. Request lists over many citizens the GP may see (registered with A81001), in a fixed shuffled
#    order: reads, searches, and creates (one Observation a line, each about another citizen).
python3 - "$data/targets.tsv" "$run" "$seed" "$paths_per_scenario" <<'EOF'
import json, random, sys
targets, run, seed, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = [line.rstrip("\n").split("\t") for line in open(targets, encoding="utf-8")]
rows = [r for r in rows if r[1] == "A81001"]
if not rows:
    sys.exit("bench/run.sh: the population has no citizen registered with A81001")
rng = random.Random(seed)
rng.shuffle(rows)
rows = rows[:limit]
with_meds = [r for r in rows if int(r[6]) > 0] or rows
with_codes = [r for r in rows if r[5]] or rows
lists = {
    "read": [f"Patient/{r[0]}" for r in rows],
    "vread": [f"Patient/{r[0]}/_history/1" for r in rows],
    "observation": [f"Observation?patient={r[0]}&code=http://loinc.org%7C{rng.choice(r[5].split(','))}" for r in with_codes],
    "medication": [f"MedicationRequest?patient={r[0]}&status=active" for r in with_meds],
    "everything": [f"Patient/{r[0]}/$everything" for r in rows],
}
for name, paths in lists.items():
    with open(f"{run}/{name}.paths", "w", encoding="utf-8") as out:
        out.write("\n".join(paths) + "\n")
# A heart rate as a GP system records it: vital signs, about one citizen, now.
with open(f"{run}/creates.tsv", "w", encoding="utf-8") as out:
    for i, r in enumerate(rows):
        observation = {
            "resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "vital-signs", "display": "Vital Signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "subject": {"reference": f"Patient/{r[0]}"},
            "effectiveDateTime": "2026-11-01T09:%02d:00Z" % (i % 60),
            "valueQuantity": {"value": 60 + i % 40, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"},
        }
        out.write("Observation\t" + json.dumps(observation, separators=(",", ":")) + "\n")
EOF

#    The transaction ingest's Bundles (bench/bundles.py's, through bench/bundles_range.py): the
#    citizens that follow the population, which the database does not hold yet (the population's own
#    would be a resend: every item created a second time), enough for a rate well above what this
#    machine stores; each connection count gets citizens of its own.
transaction_seconds=$((seconds > transaction_min_seconds ? seconds : transaction_min_seconds))
transaction_citizens=$(((transaction_seconds + 1) * transaction_citizens_per_second))
j=0
for c in $connection_counts; do
  python3 bench/bundles_range.py --first $((citizens + j * transaction_citizens)) --citizens "$transaction_citizens" \
    --seed "$seed" --mean-resources "$mean_resources" --as-of "$as_of" --out "$run/transaction-$c.ndjson" 2>/dev/null
  j=$((j + 1))
done

tls_curl=(--cacert certs/dev/ca.crt --cert "$client_cert" --key "$client_key")
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# The servers this script starts, stopped on exit whatever happens.
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ -n "$pg_dir" ]; then tests/support/postgresql.sh stop "$pg_dir"; rm -rf "$pg_dir"; fi
}
trap cleanup EXIT
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# await URL PID LOG [curl options...]: waits (up to 60 s, polling every 10 ms) until URL answers 200.
await() {
  local url=$1 pid=$2 log=$3
  shift 3
  for _ in $(seq 1 6000); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$@" "$url" || true)" = 200 ] && return 0
    kill -0 "$pid" 2>/dev/null || { echo "bench/run.sh: the server stopped; its log:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.01
  done
  echo "bench/run.sh: $url did not answer 200 within 60 s; the server's log:" >&2
  cat "$log" >&2
  exit 1
}

# serve_caregate tls|plain: starts caregate on the copy; sets server, base, url, token, started_ms.
serve_caregate() {
  local transport=$1 port scheme=https flags=()
  port=$(free_port)
  [ "$transport" = plain ] && { scheme=http; flags=(--plain); }
  base="$scheme://localhost:$port/fhir"
  url="$scheme://127.0.0.1:$port"
  local begun
  begun=$(now_ms)
  "$caregate" serve "${flags[@]}" --listen "127.0.0.1:$port" --base-url "$base" --db "$db" --certs certs/dev \
    --patient-listen none >"$run/caregate-$transport.log" 2>&1 &
  server=$!
  pids+=("$server")
  if [ "$transport" = tls ]; then await "$base/metadata" "$server" "$run/caregate-$transport.log" "${tls_curl[@]}"
  else await "$base/metadata" "$server" "$run/caregate-$transport.log"; fi
  started_ms=$(($(now_ms) - begun))
  token=$("$caregate" token --certs certs/dev --aud "$base" --org A81001 --role R8000 --user bench-gp-1 --ttl 7200)
}

declare -A rps p50 p99 non2xx problem
rows=()
excerpt() { local text=${1//$'\r'/}; text=${text//$'\n'/ }; printf '%s' "${text:0:400}"; }

# measure KEY TRANSPORT SCRIPT LIST: runs wrk at each connection count against $url with $token;
# SCRIPT paths (LIST: a .paths file) or mix (LIST: the create share, 1 in N); fills the result arrays.
measure() {
  local key=$1 transport=$2 script=$3 list=$4 c threads output result env=()
  env=(BASE_PATH=/fhir TOKEN="$token")
  if [ "$script" = paths ]; then env+=(PATHS="$run/$list.paths")
  else env+=(PATHS="$run/read.paths" CREATES="$run/creates.tsv" CREATE_EVERY="$list"); fi
  [ "$transport" = tls ] && env+=(LD_PRELOAD="$PWD/$run/client_cert.so" WRK_CLIENT_CERT="$client_cert" WRK_CLIENT_KEY="$client_key")
  for c in $connection_counts; do
    local id="$key/$transport/$c"
    rows+=("$id")
    threads=2
    [ "$c" -lt 2 ] && threads=1
    echo "== $id: $seconds s"
    env "${env[@]}" wrk -t "$threads" -c "$c" -d 1s --timeout "${request_timeout}s" -s "bench/wrk/$script.lua" "$url" >/dev/null 2>&1 || true
    output=$(env "${env[@]}" wrk -t "$threads" -c "$c" -d "${seconds}s" --timeout "${request_timeout}s" \
               -s "bench/wrk/$script.lua" "$url" 2>&1 || true)
    result=$(grep '^RESULT ' <<<"$output" || true)
    if [ -z "$result" ]; then
      non2xx[$id]=-
      problem[$id]="wrk gave no result: $(excerpt "$output")"
      echo "   FAILED: ${problem[$id]}"
      continue
    fi
    value() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$result"; }
    non2xx[$id]=$(value non_2xx)
    local sockets
    sockets=$(value socket_errors)
    if [ "${non2xx[$id]}" != 0 ] || [ "$sockets" != 0 ] || [ "$(value requests)" = 0 ]; then
      problem[$id]="${non2xx[$id]} answers not 2xx, $sockets socket errors or timeouts (over ${request_timeout} s)"
      local first_error
      first_error=$(sed -n 's/^FIRST_ERROR //p' <<<"$output")
      [ -z "$first_error" ] || problem[$id]+="; the first error: $(excerpt "$first_error")"
      echo "   FAILED: ${problem[$id]}"
      continue
    fi
    rps[$id]=$(value rps)
    p50[$id]=$(value p50_us)
    p99[$id]=$(value p99_us)
    echo "   ${rps[$id]} req/s"
  done
}

# check KEY TRANSPORT METHOD PATH [BODY]: one request before a scenario; an error or an empty search
# marks the scenario FAILED at every connection count instead of measuring it.
check() {
  local key=$1 transport=$2 method=$3 path=$4 body=${5:-} status opts=()
  [ "$transport" = tls ] && opts=("${tls_curl[@]}")
  if [ "$method" = POST ]; then
    status=$(curl -s "${opts[@]}" -o "$run/$key.first" -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
               -H 'Content-Type: application/fhir+json' --data-binary "$body" "$base/$path" || true)
  else
    status=$(curl -s "${opts[@]}" -o "$run/$key.first" -w '%{http_code}' -H "Authorization: Bearer $token" "$base/$path" || true)
  fi
  local why=""
  if [[ ! "$status" =~ ^2 ]]; then
    why="$method $path answered $status: $(excerpt "$(cat "$run/$key.first" 2>/dev/null)")"
  elif [[ "$path" == *'?'* || "$path" == *'$everything' ]] && ! python3 -c 'import json, sys
b = json.load(open(sys.argv[1], encoding="utf-8"))
sys.exit(0 if b.get("resourceType") == "Bundle" and b.get("entry") else 1)' "$run/$key.first"; then
    why="$method $path answered $status but found nothing: $(excerpt "$(cat "$run/$key.first" 2>/dev/null)")"
  fi
  [ -z "$why" ] && return 0
  local c
  for c in $connection_counts; do
    rows+=("$key/$transport/$c")
    non2xx["$key/$transport/$c"]=1
    problem["$key/$transport/$c"]=$why
  done
  echo "== $key/$transport FAILED: $why"
  return 1
}

# scenario KEY TRANSPORT SCRIPT LIST: check, then measure.
scenario() {
  local key=$1 transport=$2 script=$3 list=$4
  if [ "$script" = paths ]; then
    check "$key" "$transport" GET "$(head -n 1 "$run/$list.paths")" && measure "$@" || true
  else
    check "$key" "$transport" POST "$(head -n 1 "$run/creates.tsv" | cut -f1)" "$(head -n 1 "$run/creates.tsv" | cut -f2)" \
      && measure "$@" || true
  fi
}

# transaction_scenario TRANSPORT: POST [base] transaction as the ICS's integration system (token QZZ,
# role system; on TLS with the ICS's client certificate), with bench/load_bundles.py at each
# connection count, for $transaction_seconds s after a 1 s warm-up (at least $transaction_min_seconds s,
# so that enough Bundles are answered): the Bundles of new citizens, each sent once, a citizen's
# parts in order on one client. Every answer is checked (200, a transaction-response, every entry
# 2xx), then what was stored (bench/load_bundles.py --verify); any error fails the row. req/s is
# Bundles/s; the resources/s are kept for the footer.
declare -A transaction_detail
transaction_scenario() {
  local transport=$1 c id output result problem_text system_token opts=()
  system_token=$("$caregate" token --certs certs/dev --aud "$base" --org QZZ --role system --user bench-ingest --ttl 7200)
  [ "$transport" = tls ] && opts=(--cacert certs/dev/ca.crt --cert "$system_cert" --key "$system_key")
  for c in $connection_counts; do
    id="transaction/$transport/$c"
    rows+=("$id")
    echo "== $id: $transaction_seconds s"
    output=$(python3 bench/load_bundles.py "$run/transaction-$c.ndjson" --base "$base" --token "$system_token" \
               --connections "$c" --warmup 1 --seconds "$transaction_seconds" --timeout "$transaction_timeout" \
               --verify "${opts[@]}" 2>&1 || true)
    printf '%s\n' "$output" >"$run/transaction-$transport-$c.txt"
    result=$(grep '^RESULT ' <<<"$output" || true)
    problem_text=$(sed -n 's/^FAILED //p' <<<"$output" | head -n 1)
    if [ -z "$problem_text" ] && { [ -z "$result" ] || ! grep -q '^VERIFIED ' <<<"$output"; }; then
      problem_text="the loader gave no result: $(excerpt "$output")"
    fi
    if [ -n "$problem_text" ]; then
      non2xx[$id]=-
      problem[$id]=$(excerpt "$problem_text")
      echo "   FAILED: ${problem[$id]}"
      continue
    fi
    value() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$result"; }
    non2xx[$id]=0
    rps[$id]=$(value bundles_per_s)
    p50[$id]=$(value p50_us)
    p99[$id]=$(value p99_us)
    transaction_detail[$id]=$(awk -v r="$(value resources_per_s)" -v b="$(value bundles)" -v n="$(value resources)" \
      -v s="$(value seconds)" -v sent="$(value bundles_sent)" -v cit="$(value citizens_sent)" -v t="$transport" -v c="$c" 'BEGIN {
        printf "POST [base] transaction, %s, %s connections: %.0f resources/s (%d Bundles answered in %.1f s after a 1 s warm-up, %.0f entries each on average; all %d Bundles of the %d citizens sent were checked)", t, c, r, b, s, n / b, sent, cit }')
    echo "   $(value resources_per_s) resources/s, $(value bundles_per_s) Bundles/s"
  done
}

# 3. A first start on the copy, not measured: it checkpoints the WAL the copy may carry when it
#    stops, so that the bytes on disk are counted after it, and the measured start is a restart.
serve_caregate plain
stop "$server"
db_bytes=0
if [ "$engine" = postgresql ]; then
  db_bytes=$(psql -qtA "$db" -c "SELECT pg_database_size(current_database())")
else
  for f in "$db" "$db-wal"; do
    [ -f "$f" ] && db_bytes=$((db_bytes + $(stat -c %s "$f")))
  done
fi

#    caregate over TLS, started so that its start-up time is measured and a real stored
#    Patient's bytes (with its meta) can be taken for the probe's body; it sits idle while the
#    probe is measured.
serve_caregate tls
caregate_pid=$server
startup_ms=$started_ms
status=$(curl -s "${tls_curl[@]}" -o "$run/patient.json" -w '%{http_code}' -H "Authorization: Bearer $token" \
           "$base/$(head -n 1 "$run/read.paths")" || true)
[ "$status" = 200 ] || { echo "bench/run.sh: reading $(head -n 1 "$run/read.paths") answered $status" >&2; exit 1; }
patient_bytes=$(stat -c %s "$run/patient.json")

# 4. The ceiling probe, over TLS with a client certificate (as caregate's provider listener) and
#    over plain HTTP, sent the same requests as caregate's read (path, token).
# measure_ceiling KEY: the probe on a free port, over TLS then plain, measured as KEY.
measure_ceiling() {
  local key=$1 transport port flags probe_pid
  for transport in tls plain; do
    port=$(free_port)
    flags=()
    [ "$transport" = plain ] && flags=(--plain)
    "$probe" "${flags[@]}" --listen "127.0.0.1:$port" --certs certs/dev --body-file "$run/patient.json" \
      >"$run/probe-$transport.log" 2>&1 &
    probe_pid=$!
    pids+=("$probe_pid")
    if [ "$transport" = tls ]; then base="https://localhost:$port/fhir" url="https://127.0.0.1:$port"
      await "$base/metadata" "$probe_pid" "$run/probe-$transport.log" "${tls_curl[@]}"
    else base="http://localhost:$port/fhir" url="http://127.0.0.1:$port"
      await "$base/metadata" "$probe_pid" "$run/probe-$transport.log"; fi
    measure "$key" "$transport" paths read
    stop "$probe_pid"
  done
}
caregate_base=$base caregate_url=$url caregate_token=$token
measure_ceiling ceiling
base=$caregate_base url=$caregate_url token=$caregate_token

# 5. caregate over TLS with the client certificate and the bearer token: every scenario.
scenario read tls paths read
scenario vread tls paths vread
scenario observation tls paths observation
scenario medication tls paths medication
scenario everything tls paths everything
scenario create tls mix 1
scenario mix tls mix 10
transaction_scenario tls
rss_tls_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$caregate_pid/status")
stop "$caregate_pid"

# 6. caregate serve --plain on the same database: read and create, the figures a peer over plain
#    HTTP is compared with.
serve_caregate plain
caregate_pid=$server
scenario read plain paths read
scenario create plain mix 1
rss_plain_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$caregate_pid/status")
stop "$caregate_pid"

# 6b. The peer (bench/peer/: @medplum/fhir-router's in-memory repository behind node's http server:
#     no authentication, no access control, no audit, nothing on disk) loaded with the same
#     population, sent the same reads and creates as caregate --plain. Skipped, and said so, where
#     Node is older than the peer needs (20.19; Debian 12 has 18).
peer_note=""
if command -v node >/dev/null && command -v npm >/dev/null &&
   node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "== the peer: $citizens citizens into @medplum/fhir-router's memory"
  python3 bench/population.py --citizens "$citizens" --seed "$seed" --mean-resources "$mean_resources" \
    --as-of "$as_of" --out "$run/population.ndjson" >/dev/null
  bench/peer/run.sh --install-only >/dev/null
  port=$(free_port)
  bench/peer/run.sh --load "$run/population.ndjson" --port "$port" >"$run/peer.log" 2>&1 &
  peer_pid=$!
  pids+=("$peer_pid")
  base="http://localhost:$port/fhir" url="http://127.0.0.1:$port"
  await "$base/metadata" "$peer_pid" "$run/peer.log"
  scenario read peer paths read
  scenario create peer mix 1
  stop "$peer_pid"
  rm -f "$run/population.ndjson"
else
  peer_note="the peer was not run: it needs Node 20.19 or later and npm (found: $(node --version 2>/dev/null || echo none))"
fi

# 7. The probe again, with the token of the plain server: a ratio is to the mean of the two
#    measurements, and a machine whose other load changed during the run shows as a gap between them.
measure_ceiling ceiling_after

# 8. The table.
declare -A label=(
  [ceiling]='ceiling probe (fixed Patient)'
  [ceiling_after]='ceiling probe again, after caregate'
  [read]='GET Patient/X'
  [vread]='GET Patient/X/_history/1'
  [observation]='GET Observation?patient=X&code=Y'
  [medication]='GET MedicationRequest?patient=X&status=active'
  [everything]='GET Patient/X/$everything'
  [create]='POST Observation'
  [mix]='90% GET Patient/X, 10% POST Observation'
  [transaction]='POST [base] transaction (Bundles/s)'
)
# The ceiling of a transport and connection count: the mean of the probe's two measurements (or the
# one that did not fail).
ceiling_rps() {
  local transport=$1
  [ "$transport" = peer ] && transport=plain # the peer speaks plain HTTP
  local before=${rps[ceiling/$transport/$2]:-} after=${rps[ceiling_after/$transport/$2]:-}
  if [ -n "$before" ] && [ -n "$after" ]; then awk -v a="$before" -v b="$after" 'BEGIN { print (a + b) / 2 }'
  else echo "$before$after"; fi
}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit+changes"
{
  echo
  echo "caregate $commit, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "engine: $engine$([ "$engine" = postgresql ] && echo " (PostgreSQL $(psql -qtA "$db" -c 'SHOW server_version' | cut -d' ' -f1), a throwaway cluster on this machine, the population moved in by caregate migrate)")"
  echo "population: $citizens citizens, $resources resources (seed $seed); caller: GP clinician of A81001 (bearer token; client certificate on TLS)"
  echo "wrk on the same machine, $seconds s a scenario after a 1 s warm-up; the probe's body: a stored Patient, $patient_bytes bytes"
  printf '%-46s %-5s %5s %10s %9s %9s %8s %11s\n' scenario via conns 'req/s' 'p50 ms' 'p99 ms' 'non-2xx' 'vs ceiling'
  for id in "${rows[@]}"; do
    IFS=/ read -r key transport c <<<"$id"
    if [ -n "${problem[$id]:-}" ]; then
      printf '%-46s %-5s %5s %10s %9s %9s %8s %11s\n' "${label[$key]}" "$transport" "$c" FAILED - - "${non2xx[$id]}" -
      continue
    fi
    ceiling=$(ceiling_rps "$transport" "$c")
    ratio=-
    [ -n "$ceiling" ] && [ "$key" != transaction ] && ratio=$(awk -v a="${rps[$id]}" -v b="$ceiling" 'BEGIN { printf "%.3f", a / b }')
    printf '%-46s %-5s %5s %10.0f %9.2f %9.2f %8s %11s\n' "${label[$key]}" "$transport" "$c" "${rps[$id]}" \
      "$(awk -v u="${p50[$id]}" 'BEGIN { print u / 1000 }')" "$(awk -v u="${p99[$id]}" 'BEGIN { print u / 1000 }')" \
      "${non2xx[$id]}" "$ratio"
  done
  echo "vs ceiling: requests/s over the mean of the probe's two measurements at the same transport and connections"
  for id in "${rows[@]}"; do
    [ -z "${transaction_detail[$id]:-}" ] || echo "${transaction_detail[$id]}"
  done
  [[ " ${rows[*]} " != *" transaction/"* ]] || echo "  (the ICS's integration system (QZZ) sending new citizens' records, as bench/ingest.sh does; no 'vs ceiling': a Bundle is about 100 durable writes, not one answer as the probe's)"
  echo "peer: @medplum/fhir-router in memory, plain HTTP, no authentication, access control, audit or durability"
  [ -z "$peer_note" ] || echo "  $peer_note"
  for c in $connection_counts; do
    for key in read create; do
      mine=${rps[$key/plain/$c]:-} theirs=${rps[$key/peer/$c]:-}
      [ -n "$mine" ] && [ -n "$theirs" ] || continue
      awk -v a="$mine" -v b="$theirs" -v k="$key" -v c="$c" 'BEGIN {
        printf "caregate --plain vs the peer, %s at %s connections: %.2fx (the target is 2x)\n", k, c, a / b }'
    done
  done
  for id in "${rows[@]}"; do
    IFS=/ read -r key transport c <<<"$id"
    [ "$key" = ceiling ] && [ -n "${rps[$id]:-}" ] && [ -n "${rps[ceiling_after/$transport/$c]:-}" ] || continue
    awk -v a="${rps[$id]}" -v b="${rps[ceiling_after/$transport/$c]}" -v t="$transport" -v c="$c" 'BEGIN {
      gap = (a > b ? a - b : b - a) / ((a + b) / 2)
      if (gap > 0.1) printf "  the probe (%s, %s connections) moved %.0f%% between its two measurements: other load on the machine; the ratios are noisy\n", t, c, gap * 100 }'
  done
  echo
  echo "caregate peak RSS (VmHWM): $((rss_tls_kb / 1024)) MiB serving TLS, $((rss_plain_kb / 1024)) MiB serving plain"
  echo "caregate start-up (exec to the first 200 on /metadata, TLS): $startup_ms ms on the $((db_bytes / 1048576)) MiB database"
  [ -z "$migrated" ] || echo "  ($migrated)"
  echo "bytes on disk per resource: $(awk -v a="$db_bytes" -v b="$resources" 'BEGIN { printf "%.0f", a / b }') ($db_bytes bytes of database and WAL before the run / $resources resources)"
} >"$run/table.txt"
cat "$run/table.txt"

# 9. Start-up and peak RSS on the large population's database (bench/startup.sh), served in place,
#    when it is cached (else one line says it was skipped and how to build it): after the table,
#    with nothing else running.
large_failed=0
if [ "$large_startup" = 1 ]; then
  echo "== start-up on the $large_citizens-citizen database, if cached (bench/startup.sh)" >&2
  CAREGATE="$caregate" bench/startup.sh --citizens "$large_citizens" --seed "$seed" --mean-resources "$mean_resources" \
    --as-of "$as_of" >"$run/startup.txt" 2>&1 || large_failed=1
  sed -n '/^start-up on/,$p' "$run/startup.txt" | tee -a "$run/table.txt"
  [ "$large_failed" = 0 ] || { echo "bench/run.sh: bench/startup.sh FAILED; its output:"; cat "$run/startup.txt"; }
else
  echo "start-up on the $large_citizens-citizen database: not run (--no-large-startup)" | tee -a "$run/table.txt"
fi

scenario_failed=0
for id in "${rows[@]}"; do [ -z "${problem[$id]:-}" ] || scenario_failed=1; done
if [ "$scenario_failed" = 1 ]; then
  echo
  echo "bench/run.sh: scenarios FAILED (no figures are reported for them):"
  for id in "${rows[@]}"; do
    [ -z "${problem[$id]:-}" ] || echo "  $id: ${problem[$id]}"
  done
fi
[ "$scenario_failed" = 0 ] && [ "$large_failed" = 0 ] || exit 1
