# Shared by the bench scripts (sourced, not run).

# await_server URL PID LOG NAME [CURL_OPTION...]: waits (up to 30 s) until URL answers (curl with the
# options given, e.g. a CA and a client certificate for TLS); if the server (PID) stops first, prints
# its LOG and exits naming the script NAME.
await_server() {
  local url=$1 pid=$2 log=$3 name=$4
  shift 4
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "$@" "$url" && return 0
    kill -0 "$pid" 2>/dev/null || { echo "$name: caregate serve stopped; its log:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  echo "$name: caregate serve did not answer $url within 30 s" >&2
  exit 1
}

# free_port: a free TCP port on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# serve_plain CAREGATE PORT DB LOG: starts `caregate serve --plain` on DB at 127.0.0.1:PORT, its output
# in LOG; sets `base` and `server`, and stops it when the script exits (or at stop_server).
serve_plain() {
  local caregate=$1 port=$2 db=$3 log=$4
  base="http://127.0.0.1:$port/fhir"
  "$caregate" serve --plain --listen "127.0.0.1:$port" --base-url "$base" --db "$db" --certs certs/dev \
    --patient-listen none >"$log" 2>&1 &
  server=$!
  trap stop_server EXIT
}

# stop_server: stops the server serve_plain started, if it still runs, and waits for it.
stop_server() {
  [ -n "${server:-}" ] || return 0
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=
}

# population_dir CITIZENS SEED MEAN_RESOURCES AS_OF: sets `data` to the cache directory of that
# population's database (bench/.data/, one per parameter set and population.py version), whether or
# not it has been built.
population_dir() {
  local citizens=$1 seed=$2 mean_resources=$3 as_of=$4 generator
  generator=$(sha256sum bench/population.py | cut -c1-12)
  data="bench/.data/citizens-$citizens-seed-$seed-mean-$mean_resources-as-of-$as_of-$generator"
}

# schema_version DB: the database's schema version (PRAGMA user_version), read without writing.
schema_version() {
  python3 -c 'import sqlite3, sys
print(sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True).execute("pragma user_version").fetchone()[0])' "$1"
}

# binary_schema_version CAREGATE: the schema version that CAREGATE creates and migrates to: that of
# an empty database it opens (`caregate audit break-glass` opens the store, which migrates, and exits).
binary_schema_version() {
  local caregate=$1 scratch version
  scratch=$(mktemp -d)
  if ! "$caregate" audit break-glass --count 1 --db "$scratch/empty.db" >/dev/null 2>"$scratch/err"; then
    echo "bench: $caregate could not open an empty database: $(head -c 400 "$scratch/err")" >&2
    rm -rf "$scratch"
    return 1
  fi
  version=$(schema_version "$scratch/empty.db")
  rm -rf "$scratch"
  echo "$version"
}

# population_db CITIZENS SEED MEAN_RESOURCES AS_OF CAREGATE: the database of a synthetic population,
# built once per parameter set (and population.py version) by population.py streaming into
# `caregate import`, and cached; sets `data` to its directory (caregate.db, targets.tsv, import.txt).
# A build that fails leaves nothing in the cache.
# A cached database whose schema is older than CAREGATE's is migrated in place, once (by opening it:
# `caregate audit break-glass`, which reads and writes nothing else), so that a run's servers start
# on a current schema instead of each migrating its copy again; sets `migrated` to what was done
# (empty when nothing was). A migration that fails, or a cache newer than CAREGATE, stops the script:
# caregate migrates in one transaction, so a failed migration leaves the cache as it was.
population_db() {
  local citizens=$1 seed=$2 mean_resources=$3 as_of=$4 caregate=$5 cached current begun took
  migrated=
  population_dir "$citizens" "$seed" "$mean_resources" "$as_of"
  if [ ! -f "$data/caregate.db" ]; then
    echo "== building the database: $citizens citizens (seed $seed), once; cached in $data"
    rm -rf "$data.partial"
    mkdir -p "$data.partial"
    python3 bench/population.py --citizens "$citizens" --seed "$seed" --mean-resources "$mean_resources" \
        --as-of "$as_of" --targets "$data.partial/targets.tsv" \
      | "$caregate" import - --db "$data.partial/caregate.db" | tee "$data.partial/import.txt"
    mv "$data.partial" "$data"
  fi
  cached=$(schema_version "$data/caregate.db")
  current=$(binary_schema_version "$caregate") || exit 1
  if [ "$cached" -gt "$current" ]; then
    echo "bench: the cached database $data/caregate.db has schema $cached, newer than $caregate's $current:" \
      "use a newer caregate, or delete $data to rebuild it" >&2
    exit 1
  fi
  [ "$cached" -lt "$current" ] || return 0
  echo "== migrating the cached database from schema $cached to $current, once: $data"
  begun=$(date +%s%N)
  if ! "$caregate" audit break-glass --count 1 --db "$data/caregate.db" >/dev/null 2>"$data/migrate.err"; then
    echo "bench: migrating $data/caregate.db from schema $cached to $current FAILED:" \
      "$(head -c 600 "$data/migrate.err"); delete $data to rebuild it" >&2
    exit 1
  fi
  took=$((($(date +%s%N) - begun) / 1000000))
  rm -f "$data/migrate.err"
  if [ "$(schema_version "$data/caregate.db")" != "$current" ]; then
    echo "bench: migrating $data/caregate.db left schema $(schema_version "$data/caregate.db"), not $current" >&2
    exit 1
  fi
  migrated="the cached database was migrated from schema $cached to $current in $took ms (once: later runs start from schema $current)"
  echo "   $migrated"
}
