# Shared by the bench scripts (sourced, not run).

# await_server URL PID LOG NAME: waits (up to 30 s) until URL answers; if the server (PID) stops
# first, prints its LOG and exits naming the script NAME.
await_server() {
  local url=$1 pid=$2 log=$3 name=$4
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "$url" && return 0
    kill -0 "$pid" 2>/dev/null || { echo "$name: caregate serve stopped; its log:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  echo "$name: caregate serve did not answer $url within 30 s" >&2
  exit 1
}

# population_db CITIZENS SEED MEAN_RESOURCES AS_OF CAREGATE: the database of a synthetic population,
# built once per parameter set (and population.py version) by population.py streaming into
# `caregate import`, and cached; sets `data` to its directory (caregate.db, targets.tsv, import.txt).
# A build that fails leaves nothing in the cache.
population_db() {
  local citizens=$1 seed=$2 mean_resources=$3 as_of=$4 caregate=$5 generator
  generator=$(sha256sum bench/population.py | cut -c1-12)
  data="bench/.data/citizens-$citizens-seed-$seed-mean-$mean_resources-as-of-$as_of-$generator"
  [ -f "$data/caregate.db" ] && return 0
  echo "== building the database: $citizens citizens (seed $seed), once; cached in $data"
  rm -rf "$data.partial"
  mkdir -p "$data.partial"
  python3 bench/population.py --citizens "$citizens" --seed "$seed" --mean-resources "$mean_resources" \
      --as-of "$as_of" --targets "$data.partial/targets.tsv" \
    | "$caregate" import - --db "$data.partial/caregate.db" | tee "$data.partial/import.txt"
  mv "$data.partial" "$data"
}
