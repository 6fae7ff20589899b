#!/usr/bin/env bash
# The two storage engines in one table: bench/run.sh on SQLite, then at once bench/run.sh on
# PostgreSQL (the same population, moved by caregate migrate into a throwaway cluster), with the same
# options, and one table of both. Each half measures its own ceiling probe; the ratio column divides
# the two "vs ceiling" figures (PostgreSQL's over SQLite's), so that the machine's drift between the
# halves cancels out, as it does for every other figure of the suite. The peer's rows are left out
# (they do not depend on the engine); transaction ingest is in resources/s, divided as measured.
#
#   bench/engines.sh [bench/run.sh's options but --engine, e.g. --quick]
#
# Prints each half's full output to bench/.data/engines/{sqlite,postgresql}.txt, and the table.
set -euo pipefail
cd "$(dirname "$0")/.."
for option in "$@"; do
  [ "$option" != --engine ] || { echo "bench/engines.sh: runs both engines; drop --engine" >&2; exit 2; }
done
out=bench/.data/engines
mkdir -p "$out"
for engine in sqlite postgresql; do
  echo "== bench/run.sh $* --engine $engine"
  bench/run.sh "$@" --engine "$engine" --no-large-startup | tee "$out/$engine.txt"
done

python3 - "$out/sqlite.txt" "$out/postgresql.txt" "$*" <<'EOF'
import re, sys
row = re.compile(r"^(.*?)\s+(tls|plain|peer)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+|-)\s*$")
ingest = re.compile(r"^POST \[base\] transaction, (\w+), (\d+) connections: (\d+) resources/s")
def rows(path):
    found, order, ceiling = {}, [], {}
    for line in open(path, encoding="utf-8"):
        m = row.match(line.rstrip("\n"))
        if m and m.group(1).startswith("ceiling"):
            ceiling.setdefault((m.group(2), m.group(3)), []).append(int(m.group(4)))
        elif m and m.group(2) != "peer" and not m.group(1).startswith("POST [base] transaction"):
            key = (m.group(1).strip(), m.group(2), m.group(3))
            found[key] = int(m.group(4))
            order.append(key)
        m = ingest.match(line)
        if m:
            key = ("transaction ingest, resources/s", m.group(1), m.group(2))
            found[key] = int(m.group(3))
            order.append(key)
    return found, order, {k: sum(v) / len(v) for k, v in ceiling.items()}
sqlite, order, sqlite_ceiling = rows(sys.argv[1])
postgresql, _, postgresql_ceiling = rows(sys.argv[2])
print()
print(f"bench/engines.sh {sys.argv[3]}: the same population on each engine, SQLite's half first")
print(f"{'scenario':47} {'via':5} {'conns':>5} {'SQLite':>9} {'vs ceil':>8} {'PostgreSQL':>11} {'vs ceil':>8} {'PG/SQLite':>10}")
for key in order:
    if key not in postgresql:
        continue
    s, p = sqlite[key], postgresql[key]
    probe = (key[1], key[2])
    if key[0].startswith("transaction") or probe not in sqlite_ceiling or probe not in postgresql_ceiling:
        s_vs = p_vs = "-"
        ratio = p / s if s else 0.0
    else:
        s_share, p_share = s / sqlite_ceiling[probe], p / postgresql_ceiling[probe]
        s_vs, p_vs = f"{s_share:.4f}", f"{p_share:.4f}"
        ratio = p_share / s_share if s_share else 0.0
    print(f"{key[0]:47} {key[1]:5} {key[2]:>5} {s:>9} {s_vs:>8} {p:>11} {p_vs:>8} {ratio:>10.2f}")
print("vs ceil: req/s over the mean of that half's two probe measurements (same transport and connections);")
print("PG/SQLite: PostgreSQL's share of its probe over SQLite's share of its own; for ingest, resources/s over resources/s")
EOF
