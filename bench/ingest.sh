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
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port/fhir"
"$caregate" serve --plain --listen "127.0.0.1:$port" --base-url "$base" --db "$run/ingest.db" --certs certs/dev --patient-listen none \
  >"$run/server.log" 2>&1 &
server=$!
stop_server() {
  [ -n "${server:-}" ] || return 0
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=
}
trap stop_server EXIT
await_server "$base/metadata" "$server" "$run/server.log" bench/ingest.sh
token=$("$caregate" token --certs certs/dev --aud "$base" --org QZZ --role system --user bench-ingest --ttl 7200)

# 3. The load: the Organizations first (not timed), then every citizen's Bundles, each sent once, a
#    citizen's parts in order by one client. Any answer that is not 200 with a transaction-response
#    whose every entry is 2xx stops the run. Prints "RESULT key=value ..." (latencies in
#    microseconds) or "FAILED <what>".
echo "== POST [base]: $connections clients"
python3 - "$run/bundles.ndjson" "$port" "$token" "$connections" "$request_timeout" >"$run/load.txt" <<'EOF' || true
import http.client, json, queue, sys, threading, time
path, port, token, connections, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json",
           "Authorization": "Bearer " + token, "Prefer": "return=minimal"}

def excerpt(data):
    return " ".join(data.decode("utf-8", "replace").split())[:400]

# Bundles in order, grouped by the group named in Bundle.identifier (bench/bundles.py).
groups, order = {}, []
with open(path, "rb") as f:
    for line in f:
        if not line.strip():
            continue
        bundle = json.loads(line)
        group = bundle["identifier"]["value"].rsplit("-", 3)[0]
        if group not in groups:
            groups[group] = []
            order.append(group)
        groups[group].append((line.rstrip(b"\n"), len(bundle["entry"])))

def send(conn, body, entries):
    """POSTs one Bundle; returns (seconds, None) or (seconds, what went wrong)."""
    started = time.perf_counter()
    try:
        conn.request("POST", "/fhir", body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
    except (OSError, http.client.HTTPException) as e:
        return time.perf_counter() - started, "no answer: %s: %s" % (type(e).__name__, e)
    took = time.perf_counter() - started
    if r.status != 200:
        return took, "%d %s" % (r.status, excerpt(data))
    try:
        answer = json.loads(data)
    except ValueError:
        return took, "200 but not JSON: %s" % excerpt(data)
    if answer.get("resourceType") != "Bundle" or answer.get("type") != "transaction-response":
        return took, "200 but not a transaction-response: %s" % excerpt(data)
    got = answer.get("entry") or []
    if len(got) != entries:
        return took, "200 with %d response entries for %d entries" % (len(got), entries)
    for i, e in enumerate(got):
        status = str((e.get("response") or {}).get("status", ""))
        if not status.startswith("2"):
            return took, "200 but entry %d answered %r: %s" % (i, status, excerpt(json.dumps(e).encode()))
    return took, None

def connect():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

# The Organizations, not timed: the records reference them.
conn = connect()
for body, entries in groups.pop("organisations", []):
    _, problem = send(conn, body, entries)
    if problem:
        print("FAILED the Organizations' Bundle: POST [base] answered " + problem)
        sys.exit(0)
conn.close()
order = [g for g in order if g != "organisations"]

work = queue.Queue()
for g in order:
    work.put(g)
latencies, lock, stop = [], threading.Lock(), threading.Event()
failures, sent = [], {"bundles": 0, "resources": 0}

def client():
    conn = connect()
    while not stop.is_set():
        try:
            group = work.get_nowait()
        except queue.Empty:
            break
        for body, entries in groups[group]:
            took, problem = send(conn, body, entries)
            with lock:
                latencies.append(took)
                if problem:
                    failures.append("citizen %s: POST [base] answered %s" % (group, problem))
                    stop.set()
                else:
                    sent["bundles"] += 1
                    sent["resources"] += entries
            if problem:
                break
    conn.close()

started = time.perf_counter()
threads = [threading.Thread(target=client) for _ in range(connections)]
for t in threads:
    t.start()
for t in threads:
    t.join()
seconds = time.perf_counter() - started
if failures:
    print("FAILED after %d Bundles stored; the first error: %s" % (sent["bundles"], failures[0]))
    sys.exit(0)
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
print("RESULT bundles=%d resources=%d seconds=%.3f resources_per_s=%.1f bundles_per_s=%.1f p50_us=%d p99_us=%d"
      % (sent["bundles"], sent["resources"], seconds, sent["resources"] / seconds, sent["bundles"] / seconds,
         pick(0.50) * 1e6, pick(0.99) * 1e6))
EOF
cat "$run/load.txt"
result=$(grep '^RESULT ' "$run/load.txt" || true)
problem=
if [ -z "$result" ]; then
  problem=$(sed -n 's/^FAILED //p' "$run/load.txt")
  [ -n "$problem" ] || problem="the client gave no result: $(head -c 400 "$run/load.txt")"
fi

# 4. What was stored: each type's count (an empty database, so exactly what the Bundles carry), and
#    the references of a few citizens' records: each an id the server assigned (no urn:uuid, no
#    search URL left), pointing at a resource of the same citizen. The largest record is one of them,
#    so that references between its parts are checked too.
if [ -z "$problem" ]; then
  echo "== what was stored"
  python3 - "$run/bundles.ndjson" "$port" "$token" >"$run/verify.txt" <<'EOF' || true
import collections, http.client, json, sys, urllib.parse
path, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
headers = {"Accept": "application/fhir+json", "Authorization": "Bearer " + token}

class refused(Exception):
    pass

def get(target):
    """GET a path and query under /fhir/ (or a link's absolute URL): the JSON body of a 200."""
    if target.startswith("http"):
        u = urllib.parse.urlsplit(target)
        target = u.path + ("?" + u.query if u.query else "")
    else:
        target = "/fhir/" + target
    conn.request("GET", target, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise refused("GET %s answered %d: %s" % (target, r.status, " ".join(data.decode("utf-8", "replace").split())[:400]))
    return json.loads(data)

def verify():
    problems = []
    expected, sizes = collections.Counter(), collections.Counter()
    for line in open(path, encoding="utf-8"):
        bundle = json.loads(line)
        group = bundle["identifier"]["value"].rsplit("-", 3)[0]
        for e in bundle["entry"]:
            expected[e["resource"]["resourceType"]] += 1
            sizes[group] += 1
    for rtype, want in sorted(expected.items()):
        got = get("%s?_summary=count" % rtype).get("total")
        if got != want:
            problems.append("%s: %s stored, %d sent" % (rtype, got, want))

    citizens = [g for g in sizes if g != "organisations"]
    sample = sorted(set(citizens[:4] + [max(citizens, key=lambda g: (sizes[g], g))])) if citizens else []
    checked = 0
    for nhs in sample:
        items = []
        for rtype in ("Encounter", "Condition", "Observation", "MedicationRequest", "CarePlan"):
            url = "%s?patient=%s&_count=1000" % (rtype, nhs)
            while url:
                page = get(url)
                items += [e["resource"] for e in page.get("entry") or []
                          if (e.get("search") or {}).get("mode", "match") == "match"]
                url = next((l["url"] for l in page.get("link") or [] if l.get("relation") == "next"), None)
        mine = {"%s/%s" % (r["resourceType"], r["id"]) for r in items}
        for r in items:
            key = "%s/%s" % (r["resourceType"], r["id"])
            text = json.dumps(r)
            if "urn:uuid:" in text or "?identifier=" in text:
                problems.append("%s keeps a reference the server did not resolve" % key)
            subject = (r.get("subject") or r.get("patient") or {}).get("reference")
            if subject != "Patient/" + nhs:
                problems.append("%s: subject %r, expected Patient/%s" % (key, subject, nhs))
            targets = [(r.get("encounter") or {}).get("reference")] + [a.get("reference") for a in r.get("addresses") or []]
            for t in filter(None, targets):
                if t not in mine:
                    problems.append("%s references %s, not an item of Patient/%s" % (key, t, nhs))
            checked += 1
    if problems:
        raise refused("; ".join(problems[:5]) + (" (+%d more)" % (len(problems) - 5) if len(problems) > 5 else ""))
    return "%d resources counted by type; the references of %d resources of %d citizens (largest record %d resources)" % (
        sum(expected.values()), checked, len(sample), max(sizes[g] for g in sample) if sample else 0)

try:
    print("VERIFIED " + verify())
except (refused, OSError, http.client.HTTPException, ValueError, KeyError) as e:
    print("FAILED %s" % e)
EOF
  cat "$run/verify.txt"
  grep -q '^VERIFIED ' "$run/verify.txt" || problem="stored data: $(sed -n 's/^FAILED //p' "$run/verify.txt" | head -c 600)"
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
