#!/usr/bin/env bash
# The PostgreSQL writer's statement time per stored resource, per table: transaction ingest (the
# suite's Bundles, bench/load_bundles.py, TLS, 16 connections) into a copy of the 1,000-citizen
# population moved into a throwaway cluster, with pg_stat_statements. The total execution time of
# every statement, divided by the resources the run made, moves by a few percent between runs where
# the resources/s of a 5-second row move by a fifth: the measure for a change to the writer's tables.
#
#   bench/writer_cost.sh [--seconds S] [--shared-buffers 128MB] [--setting NAME=VALUE]...
#
# Prints resources/s; caregate's own CPU time per resource (every thread: parsing, validation, index
# extraction, the writer; the measure for a change to caregate's side of ingest, which the machine's
# noise moves far less than resources/s); one line per table: microseconds of statement execution per
# resource, buffer pages touched per resource (hit or read: the work, which the machine's noise
# does not move) and statements executed per resource; and the
# WAL the run wrote per resource (records, full-page images, bytes: pg_stat_wal) with the checkpoints
# it saw. --setting sets a server setting for the run (ALTER SYSTEM, before the restart), to compare
# one configuration with another: --setting wal_compression=lz4 --setting max_wal_size=8GB.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

seconds=10
shared_buffers=""
settings=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:?--seconds needs S}; shift 2 ;;
    --shared-buffers) shared_buffers=${2:?--shared-buffers needs a size like 2GB}; shift 2 ;;
    --setting)
      [[ "${2:-}" =~ ^[a-z_]+=[A-Za-z0-9_.]+$ ]] || { echo "bench/writer_cost.sh: --setting needs NAME=VALUE" >&2; exit 2; }
      settings+=("$2"); shift 2 ;;
    *) echo "bench/writer_cost.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
caregate=${CAREGATE:-build/caregate}
[ -x "$caregate" ] || { echo "bench/writer_cost.sh: $caregate is not built" >&2; exit 2; }
./run.sh --install postgresql-15 python3 curl >/dev/null
[ -f certs/dev/token-signing.key ] || certs/make-dev-certs.sh --out certs/dev >/dev/null

population_db 1000 1 100 2026-11-01 "$caregate"
work=$(mktemp -d)
chmod 755 "$work"
server=""
cleanup() {
  [ -z "$server" ] || { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
  tests/support/postgresql.sh stop "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT
# As bench/run.sh sizes its cluster, unless told otherwise.
[ -n "$shared_buffers" ] ||
  shared_buffers=$(awk '/^MemTotal:/ { mb = int($2 / 1024 / 4); print (mb > 4096 ? 4096 : mb) "MB" }' /proc/meminfo)
cp "$data/caregate.db" "$work/src.db"
[ -f "$data/caregate.db-wal" ] && cp "$data/caregate.db-wal" "$work/src.db-wal"
uri=$(CAREGATE_PG_SHARED_BUFFERS="$shared_buffers" tests/support/postgresql.sh start "$work/pg")
"$caregate" migrate --from "$work/src.db" --to "$uri" >/dev/null
sql() { psql -q -At -F' ' "$uri" "$@"; }
# pg_stat_statements is loaded at the server's start: set it, restart with the same options.
sql -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
for setting in "${settings[@]}"; do
  sql -c "ALTER SYSTEM SET ${setting%%=*} = '${setting#*=}'"
done
as_owner=(); [ "$(id -u)" = 0 ] && as_owner=(runuser -u postgres --)
"${as_owner[@]}" /usr/lib/postgresql/15/bin/pg_ctl -D "$work/pg/data" -l "$work/pg/server.log" -w restart >/dev/null
sql -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
before=$(sql -c "SELECT count(*) FROM resources")
python3 bench/bundles_range.py --first 1000 --citizens $(((seconds + 2) * 50)) --seed 1 --mean-resources 100 \
  --as-of 2026-11-01 --out "$work/bundles.ndjson" 2>/dev/null

port=$(free_port)
base="https://localhost:$port/fhir"
"$caregate" serve --listen "127.0.0.1:$port" --base-url "$base" --db "$uri" --certs certs/dev \
  --patient-listen none --admin-listen none >"$work/serve.log" 2>&1 &
server=$!
tls=(--cacert certs/dev/ca.crt --cert certs/dev/client-QZZ.crt --key certs/dev/client-QZZ.key)
for _ in $(seq 600); do curl -s -o /dev/null "${tls[@]}" "$base/metadata" && break; sleep 0.05; done
token=$("$caregate" token --certs certs/dev --aud "$base" --org QZZ --role system --user bench-ingest --ttl 7200)
sql -c "SELECT pg_stat_statements_reset()" >/dev/null
sql -c "SELECT pg_stat_reset_shared('wal')" >/dev/null
checkpoints_before=$(sql -c "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
# caregate's own CPU time (user and system, in clock ticks: /proc/PID/stat fields 14 and 15).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
cpu_before=$(cpu_ticks)
python3 bench/load_bundles.py "$work/bundles.ndjson" --base "$base" --token "$token" --connections 16 \
  --seconds "$seconds" --cacert certs/dev/ca.crt --cert certs/dev/client-QZZ.crt --key certs/dev/client-QZZ.key |
  grep '^RESULT' | sed -E 's/.*resources_per_s=([0-9.]+).*/transaction ingest: \1 resources\/s/'
cpu_after=$(cpu_ticks)
made=$(sql -c "SELECT count(*) - $before FROM resources")
echo "caregate CPU per resource: $(awk -v t=$((cpu_after - cpu_before)) -v hz="$(getconf CLK_TCK)" -v n="$made" \
  'BEGIN { printf "%.1f", t * 1e6 / hz / n }') us (user and system, every thread)"
sql <<SQL
WITH made AS (SELECT count(*) - $before AS n FROM resources),
spent AS (SELECT CASE WHEN query LIKE 'INSERT INTO %' THEN split_part(query, ' ', 3)
                      WHEN query LIKE '%FOR KEY SHARE%' THEN 'foreign-key-checks'
                      WHEN query LIKE 'SELECT%' THEN 'selects' ELSE 'other' END AS what, total_exec_time,
                 shared_blks_hit + shared_blks_read AS blocks, calls
          FROM pg_stat_statements),
per AS (SELECT what, sum(total_exec_time) AS ms, sum(blocks) AS blocks, sum(calls) AS calls FROM spent GROUP BY what
        UNION ALL SELECT 'TOTAL', sum(total_exec_time), sum(blocks), sum(calls) FROM spent)
SELECT 'statement us per resource: ' || rpad(what, 19) || lpad(round((ms * 1000 / (SELECT n FROM made))::numeric, 1)::text, 6)
       || '   buffer pages touched: ' || lpad(round(blocks::numeric / (SELECT n FROM made), 1)::text, 5)
       || '   statements: ' || lpad(round(calls::numeric / (SELECT n FROM made), 1)::text, 5)
FROM per ORDER BY ms DESC;
SQL
for setting in "${settings[@]}"; do echo "setting: $setting"; done
sql <<SQL
WITH made AS (SELECT count(*) - $before AS n FROM resources)
SELECT 'wal per resource: ' || round(wal_records::numeric / n, 1) || ' records, '
       || round(wal_fpi::numeric / n, 2) || ' full-page images, ' || round(wal_bytes / n) || ' bytes; '
       || (SELECT checkpoints_timed + checkpoints_req - $checkpoints_before FROM pg_stat_bgwriter) || ' checkpoints'
FROM pg_stat_wal, made;
SQL
