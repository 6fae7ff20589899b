#!/usr/bin/env bash
# Sets everything up (as ./run.sh does), builds, and runs every test: the doctest suites through
# ctest, the storage suite again on PostgreSQL (a throwaway cluster of its own, tests/support/
# postgresql.sh), then the black-box conformance suite against a real `caregate serve` on a free
# port, on SQLite and on PostgreSQL, the reliability tests (backup, crash, full disk, floods), the
# fuzzers and the sanitizer builds.
#
#   ./test.sh           what CI runs (.ci/run): the fuzzers 15 s each
#   ./test.sh --full    the same, with the fuzzers 10 minutes each and the 30-minute soak test
#                       (bench/soak.sh) after: about two hours
set -euo pipefail
cd "$(dirname "$0")"

full=0
case "${1:-}" in
  --full) full=1 ;;
  "") ;;
  *) echo "usage: ./test.sh [--full]" >&2; exit 2 ;;
esac

./run.sh --setup-only

echo "== every option of every caregate command is documented in docs/OPERATIONS.md"
for command in serve token audit import backup migrate; do
  for flag in $(build/caregate "$command" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    grep -q -- "\`$flag" docs/OPERATIONS.md || { echo "docs/OPERATIONS.md does not document caregate $command $flag" >&2; exit 1; }
  done
done

echo "== unit and integration tests (ctest)"
ctest --test-dir build --output-on-failure

echo "== a throwaway PostgreSQL 15 cluster for the tests on the second storage engine"
./run.sh --install postgresql-15
pg_dir=$(mktemp -d)
stop_postgresql() { tests/support/postgresql.sh stop "$pg_dir"; rm -rf "$pg_dir"; }
trap stop_postgresql EXIT
pg_uri=$(tests/support/postgresql.sh start "$pg_dir")

echo "== the storage suite on PostgreSQL (the same suite; what only SQLite has is skipped)"
CAREGATE_TEST_POSTGRESQL="$pg_uri" build/tests/storage_tests

echo "== conformance suite against a live server"
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
patient_port=$(free_port) # the patient-facing listener, so that no fixed port can collide
patient_base="https://localhost:$patient_port/fhir"
admin_port=$(free_port) # the admin listener (health, readiness, metrics)
build/caregate serve --db "$work/conformance.db" --listen "127.0.0.1:$port" --certs certs/dev \
  --patient-listen "127.0.0.1:$patient_port" --patient-base-url "$patient_base" \
  --cors-origins https://app.example.nhs.uk --dev-idp \
  --admin-listen "127.0.0.1:$admin_port" >"$work/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"; stop_postgresql; }
trap cleanup EXIT

for _ in $(seq 1 100); do
  curl -s -o /dev/null --cacert certs/dev/ca.crt "https://localhost:$port/fhir/metadata" && break
  sleep 0.1
done

# Callers for the conformance suite: a client certificate and a development token each (README,
# "Who may see what"). The core checks run as the ICS's integration system; the access checks use them all.
base="https://localhost:$port/fhir"
mint() { build/caregate token --certs certs/dev --aud "$base" "$@"; }
identity() { # name ods role user [extra token flags...]
  local name=$1 ods=$2 role=$3 user=$4; shift 4
  printf '"%s": {"cert": "certs/dev/client-%s.crt", "key": "certs/dev/client-%s.key", "token": "%s"}' \
    "$name" "$ods" "$ods" "$(mint --org "$ods" --role "$role" --user "$user" "$@")"
}
citizen=9990001235
carer=9990001243
mint_citizen() { build/caregate token --certs certs/dev --aud "$patient_base" "$@"; }
certs/make-dev-certs.sh --out "$work/other-certs" --client A81001 >/dev/null  # an issuer key nobody trusts
write_identities() { # FILE: the callers of the server at $base and $patient_base
{
  echo "{"
  identity system QZZ system conformance-system; echo ","
  identity gp_clinician A81001 R8000 gp-doctor-1; echo ","
  identity gp_admin A81001 R8008 gp-admin-1; echo ","
  identity acute_clinician RX1 R8000 acute-doctor-1; echo ","
  identity acute_emergency RX1 R8000 acute-doctor-2 --purpose ETREAT --reason "unconscious in A&E"; echo ","
  identity social_worker 8JK23 R8014 social-worker-1; echo ","
  identity ig QZZ R8012 ig-officer-1; echo ","
  identity analyst QZZ analyst population-platform; echo ","  # pseudonymised exports only
  # The patient checks' citizen, verified to P9 and to P5: a fixed test number (tokens are minted
  # before the run), whose record the checks create themselves.
  printf '"citizens": {"p9": {"nhs_number": "%s", "token": "%s"}, "p5": {"nhs_number": "%s", "token": "%s"},' \
    "$citizen" "$(mint_citizen --citizen "$citizen" --proofing P9)" \
    "$citizen" "$(mint_citizen --citizen "$citizen" --proofing P5)"
  # ...the same citizen's app allowed to write, and a carer (another test number) to act for them.
  printf ' "p9_write": {"nhs_number": "%s", "token": "%s"}, "carer": {"nhs_number": "%s", "token": "%s"}},\n' \
    "$citizen" "$(mint_citizen --citizen "$citizen" --scope "patient/*.cruds")" \
    "$carer" "$(mint_citizen --citizen "$carer")"
  printf '"bad_tokens": {"expired": "%s", "wrong_audience": "%s", "untrusted_key": "%s"}\n' \
    "$(mint --org A81001 --role R8000 --user gp-doctor-1 --ttl -600)" \
    "$(build/caregate token --certs certs/dev --aud https://elsewhere.invalid/fhir --org A81001 --role R8000 --user gp-doctor-1)" \
    "$(build/caregate token --certs "$work/other-certs" --aud "$base" --org A81001 --role R8000 --user gp-doctor-1)"
  echo "}"
} >"$1"
}
write_identities "$work/identities.json"
system_token=$(mint --org QZZ --role system --user conformance-system)

status=0
python3 conformance/run.py --base-url "$base" --cacert certs/dev/ca.crt \
  --cert certs/dev/client-QZZ.crt --key certs/dev/client-QZZ.key --bearer "$system_token" \
  --identities "$work/identities.json" --patient-base-url "$patient_base" --cors-origin https://app.example.nhs.uk \
  --examples tests/data/r4-examples | tee "$work/conformance.out" \
  || status=1

echo "== a SMART client library (fhirclient) discovers the patient-facing endpoint and reads a record"
# conformance/smart/: SMART's own JavaScript client, through its own discovery code. Two citizens of
# its own, written through the provider endpoint.
provider_put() {
  curl -sS -o /dev/null --fail-with-body --cacert certs/dev/ca.crt --cert certs/dev/client-QZZ.crt \
    --key certs/dev/client-QZZ.key -H "Authorization: Bearer $system_token" \
    -H "Content-Type: application/fhir+json" -X PUT "$base/$1" --data-binary "$2"
}
for nhs in 9000000009 9000000017; do
  provider_put "Patient/$nhs" '{"resourceType":"Patient","id":"'$nhs'","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"'$nhs'"}],"name":[{"family":"Smart","given":["Check"]}]}'
  provider_put "Observation/smart-check-$nhs" '{"resourceType":"Observation","id":"smart-check-'$nhs'","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/'$nhs'"},"effectiveDateTime":"2026-01-01T09:00:00Z","valueQuantity":{"value":70,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}'
done
conformance/smart/run.sh --base-url "$patient_base" --cacert certs/dev/ca.crt --nhs 9000000009 --other-nhs 9000000017 \
  --token "$(mint_citizen --citizen 9000000009)" --dev-idp | tee "$work/smart.out" || status=1

echo "== a Bulk Data client (Medplum's, conformance/bulk/) exports from the server unchanged: system, Patient and Group levels"
# A Group of the SMART check's two citizens, for the Group level.
provider_put "Group/bulk-client-check" '{"resourceType":"Group","id":"bulk-client-check","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/9000000009"}},{"entity":{"reference":"Patient/9000000017"}}]}'
conformance/bulk/run.sh --base-url "$base" --cacert certs/dev/ca.crt --cert certs/dev/client-QZZ.crt \
  --key certs/dev/client-QZZ.key --token "$system_token" --kickoff both --patient --group bulk-client-check \
  --out "$work/bulk" | tee "$work/bulk.out" || status=1

echo "== the citizen app in a real browser (chromium, puppeteer-core, axe-core): a citizen, their GP and their carer"
# tests/browser/: the whole journey through the development login, against the server at $base and
# $patient_port; a screenshot of each step is kept in build/test-artifacts/browser/ENGINE/.
./run.sh --install chromium
. tests/browser/record.sh
browser_journey() { # ENGINE
  system_token=$(mint --org QZZ --role system --user conformance-system) # provider_put's, for this server
  write_browser_record 9990002002
  rm -rf "build/test-artifacts/browser/$1"
  tests/browser/run.sh --app "https://localhost:$patient_port/app/" --provider "$base" --cacert certs/dev/ca.crt \
    --gp-cert certs/dev/client-A81001.crt --gp-key certs/dev/client-A81001.key \
    --gp-token "$(mint --org A81001 --role R8000 --user gp-doctor-1)" \
    --emergency-cert certs/dev/client-RX1.crt --emergency-key certs/dev/client-RX1.key \
    --emergency-token "$(mint --org RX1 --role R8000 --user acute-doctor-2 --purpose ETREAT --reason "collapsed at home")" \
    --citizen 9990002002 --carer 9990002010 --out "build/test-artifacts/browser/$1" | tee "$work/browser-$1.out"
}
browser_journey sqlite || status=1

echo "== the admin listener of the same server: /health, /ready, and /metrics counting what the suites asked"
admin_ok=1
admin="http://127.0.0.1:$admin_port"
curl -sS --fail "$admin/health" >/dev/null || { echo "/health did not answer 200" >&2; admin_ok=0; }
curl -sS --fail "$admin/ready" >/dev/null || { echo "/ready did not answer 200" >&2; admin_ok=0; }
curl -sS --fail "$admin/metrics" >"$work/metrics.txt" || { echo "/metrics did not answer 200" >&2; admin_ok=0; }
grep -Eq '^caregate_http_requests_total\{endpoint="provider",interaction="read",status="200"\} [1-9]' "$work/metrics.txt" \
  || { echo "/metrics counted no provider read answered 200" >&2; admin_ok=0; }
grep -Eq '^caregate_database_up 1$' "$work/metrics.txt" || { echo "/metrics: caregate_database_up is not 1" >&2; admin_ok=0; }
if grep -q "$citizen" "$work/metrics.txt"; then echo "/metrics holds an NHS number" >&2; admin_ok=0; fi
[ "$admin_ok" = 1 ] || status=1

echo "== caregate backup copies the database while the server still serves it"
backup_ok=1
build/caregate backup --db "$work/conformance.db" --to "$work/backup.db" || { backup_ok=0; status=1; }

# The server must stop cleanly on SIGTERM (graceful shutdown).
kill -TERM "$server"
if ! wait "$server"; then
  echo "caregate serve did not stop cleanly; its log:" >&2
  cat "$work/server.log" >&2
  status=1
fi

echo "== the conformance suite against a server on PostgreSQL"
pg_ok=1
"/usr/lib/postgresql/15/bin/createdb" -h 127.0.0.1 -p "$(cat "$pg_dir/port")" -U caregate conformance
pg_conformance_uri="postgresql://caregate@127.0.0.1:$(cat "$pg_dir/port")/conformance"
port=$(free_port)
patient_port=$(free_port)
patient_base="https://localhost:$patient_port/fhir"
base="https://localhost:$port/fhir"
build/caregate serve --db "$pg_conformance_uri" --listen "127.0.0.1:$port" --certs certs/dev \
  --patient-listen "127.0.0.1:$patient_port" --patient-base-url "$patient_base" --admin-listen none \
  --cors-origins https://app.example.nhs.uk --dev-idp >"$work/pg-server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -s -o /dev/null --cacert certs/dev/ca.crt "https://localhost:$port/fhir/metadata" && break
  sleep 0.1
done
write_identities "$work/pg-identities.json"
python3 conformance/run.py --base-url "$base" --cacert certs/dev/ca.crt \
  --cert certs/dev/client-QZZ.crt --key certs/dev/client-QZZ.key --bearer "$(mint --org QZZ --role system --user conformance-system)" \
  --identities "$work/pg-identities.json" --patient-base-url "$patient_base" --cors-origin https://app.example.nhs.uk \
  --examples tests/data/r4-examples | tee "$work/pg-conformance.out" \
  || pg_ok=0
echo "== the citizen app's browser journey against the server on PostgreSQL"
browser_journey postgresql || pg_ok=0
kill -TERM "$server"
if ! wait "$server"; then
  echo "caregate serve on PostgreSQL did not stop cleanly; its log:" >&2
  cat "$work/pg-server.log" >&2
  pg_ok=0
fi
build/caregate audit verify --db "$pg_conformance_uri" || pg_ok=0
[ "$pg_ok" = 1 ] || status=1

echo "== the audit log's hash chain verifies after the run"
audit_ok=1
build/caregate audit verify --db "$work/conformance.db" || { audit_ok=0; status=1; }
# ...and detects one record altered by hand (the append-only trigger dropped first, as an attacker with
# the database file could): verify must fail and name record 7.
echo "== ...and names a record altered by hand (a BROKEN line is expected next)"
cp "$work/conformance.db" "$work/tampered.db"
sqlite3 "$work/tampered.db" "DROP TRIGGER audit_log_never_changes; UPDATE audit_log SET user = 'someone-else' WHERE sequence = 7;"
if build/caregate audit verify --db "$work/tampered.db" | tee "$work/tampered.out"; then
  echo "caregate audit verify did not notice an altered record" >&2; audit_ok=0; status=1
elif ! grep -q "record 7:" "$work/tampered.out"; then
  echo "caregate audit verify did not name the altered record 7" >&2; audit_ok=0; status=1
fi

# ...and the backup, restored (opened as a database), has a verifying chain of its own and the
# citizens the run stored.
echo "== the backup restores: its audit chain verifies and it holds the run's Patients"
if [ "$backup_ok" = 1 ]; then
  build/caregate audit verify --db "$work/backup.db" || { backup_ok=0; status=1; }
  patients=$(sqlite3 "$work/backup.db" "SELECT count(*) FROM resources WHERE type = 'Patient' AND deleted = 0")
  [ "${patients:-0}" -gt 0 ] || { echo "the backup holds no Patient" >&2; backup_ok=0; status=1; }
fi

echo "== caregate migrate moves the conformance run's SQLite database into PostgreSQL, whole"
migrate_ok=1
"/usr/lib/postgresql/15/bin/createdb" -h 127.0.0.1 -p "$(cat "$pg_dir/port")" -U caregate migrated
migrated_uri="postgresql://caregate@127.0.0.1:$(cat "$pg_dir/port")/migrated"
build/caregate migrate --from "$work/conformance.db" --to "$migrated_uri" || migrate_ok=0
build/caregate audit verify --db "$migrated_uri" || migrate_ok=0
for table in resource_versions resources organisation_links search_reference audit_log search_token version_citizens; do
  in_sqlite=$(sqlite3 "$work/conformance.db" "SELECT count(*) FROM $table")
  in_postgresql=$(psql -qtA "$migrated_uri" -c "SELECT count(*) FROM $table")
  [ "$in_sqlite" = "$in_postgresql" ] || { echo "caregate migrate: $table has $in_sqlite rows in SQLite, $in_postgresql in PostgreSQL" >&2; migrate_ok=0; }
done
[ "$migrate_ok" = 1 ] || status=1

echo "== two caregate nodes on one PostgreSQL database: a narrowing write through one is seen through the other at once (20 rounds); conditional creates raced over both make one resource; one audit chain"
two_nodes_ok=1
"/usr/lib/postgresql/15/bin/createdb" -h 127.0.0.1 -p "$(cat "$pg_dir/port")" -U caregate two_nodes
python3 tests/crash/two_nodes_test.py --caregate build/caregate --rounds 20 \
  --db "postgresql://caregate@127.0.0.1:$(cat "$pg_dir/port")/two_nodes" || { two_nodes_ok=0; status=1; }

echo "== failover: two caregate nodes on a PostgreSQL primary with a synchronous standby, the primary SIGKILLed under writes and the standby promoted (5 times)"
failover_ok=1
python3 tests/crash/failover_test.py --caregate build/caregate --rounds 5 || { failover_ok=0; status=1; }

echo "== the crash test: writers, SIGKILL at a random moment, restart, every acknowledged write there (20 kills)"
crash_ok=1
python3 tests/crash/crash_test.py --caregate build/caregate --rounds 20 --keep "$work/crash" || { crash_ok=0; status=1; }

echo "== the export crash test: a Bulk Data export SIGKILLed 3 times mid-job while others write, on SQLite and on PostgreSQL: every line once, nothing written after its transaction time"
export_crash_ok=1
python3 tests/crash/export_crash_test.py --caregate build/caregate --kills 3 || { export_crash_ok=0; status=1; }
"/usr/lib/postgresql/15/bin/createdb" -h 127.0.0.1 -p "$(cat "$pg_dir/port")" -U caregate export_crash
python3 tests/crash/export_crash_test.py --caregate build/caregate --kills 3 \
  --db "postgresql://caregate@127.0.0.1:$(cat "$pg_dir/port")/export_crash" || { export_crash_ok=0; status=1; }

echo "== a 50 MiB Binary (a scanned letter) up and down raw and as base64, on SQLite and on PostgreSQL: every byte the same, the server's peak memory at most 1.5 times one copy"
binary_ok=1
python3 tests/crash/large_binary_test.py --caregate build/caregate --mib 50 || { binary_ok=0; status=1; }
"/usr/lib/postgresql/15/bin/createdb" -h 127.0.0.1 -p "$(cat "$pg_dir/port")" -U caregate large_binary
python3 tests/crash/large_binary_test.py --caregate build/caregate --mib 50 \
  --postgresql "postgresql://caregate@127.0.0.1:$(cat "$pg_dir/port")/large_binary" || { binary_ok=0; status=1; }

echo "== a real full disk: the database on a small tmpfs, filled until 503, grown under the running server"
disk_ok=1
python3 tests/crash/disk_full_test.py --caregate build/caregate || { disk_ok=0; status=1; }

echo "== floods: 3,000 idle connections and 200 slowloris clients while a normal client is served"
flood_ok=1
python3 tests/crash/flood_test.py --caregate build/caregate || { flood_ok=0; status=1; }

fuzz_seconds=15
[ "$full" = 1 ] && fuzz_seconds=600
echo "== the fuzzers (libFuzzer with ASan and UBSan, clang), $fuzz_seconds s each (tests/fuzz/run.sh)"
fuzz_ok=1
tests/fuzz/run.sh --seconds "$fuzz_seconds" || { fuzz_ok=0; status=1; }

echo "== the doctest suites under ASan + UBSan, and storage's (on both engines) and gateway's under TSan (tests/sanitize/run.sh)"
sanitize_ok=1
CAREGATE_TEST_POSTGRESQL="$pg_uri" tests/sanitize/run.sh || { sanitize_ok=0; status=1; }

soak_ok=1
if [ "$full" = 1 ]; then
  echo "== the soak test: 30 minutes of mixed load over TLS (bench/soak.sh)"
  bench/soak.sh --minutes 30 || { soak_ok=0; status=1; }
fi

# One closing line for the whole run: ctest's suites, the conformance checks, the SMART client's
# checks, the browser journey's checks, the admin listener, the audit chain, the backup, the crash test, the large Binary, the full disk, the floods, the fuzzers, the sanitizer builds (and with --full the soak test).
read -r c_pass c_fail < <(tail -n 1 "$work/conformance.out" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/')
read -r s_pass s_fail < <(tail -n 1 "$work/smart.out" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/')
read -r p_pass p_fail < <(tail -n 1 "$work/pg-conformance.out" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/')
read -r b_pass b_fail < <(tail -n 1 "$work/bulk.out" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/')
read -r w_pass w_fail < <(tail -n 1 "$work/browser-sqlite.out" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/')
read -r wp_pass wp_fail < <(tail -n 1 "$work/browser-postgresql.out" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/')
passed=$((4 + ${c_pass:-0} + ${s_pass:-0} + ${p_pass:-0} + ${b_pass:-0} + ${w_pass:-0} + ${wp_pass:-0} + pg_ok + migrate_ok + two_nodes_ok + failover_ok + admin_ok + audit_ok + backup_ok + crash_ok + export_crash_ok + binary_ok + disk_ok + flood_ok + fuzz_ok + sanitize_ok + full * soak_ok))
failed=$((${c_fail:-1} + ${s_fail:-1} + ${p_fail:-1} + ${b_fail:-1} + ${w_fail:-1} + ${wp_fail:-1} + 14 + full - pg_ok - migrate_ok - two_nodes_ok - failover_ok - admin_ok - audit_ok - backup_ok - crash_ok - export_crash_ok - binary_ok - disk_ok - flood_ok - fuzz_ok - sanitize_ok - full * soak_ok))
# What failed, named again at the end: CI keeps only the tail of the output.
if [ "$status" != 0 ]; then
  echo "== what failed"
  for part in pg migrate two_nodes failover admin audit backup crash export_crash binary disk flood fuzz sanitize soak; do
    ok="${part}_ok"
    [ "${!ok}" = 1 ] || echo "  $part"
  done
  grep -h '^FAIL ' "$work/conformance.out" "$work/smart.out" "$work/bulk.out" "$work/browser-sqlite.out" "$work/browser-postgresql.out" "$work/pg-conformance.out" 2>/dev/null | sed 's/^/  /'
fi
echo "test.sh: $passed passed, $failed failed"
exit $status
