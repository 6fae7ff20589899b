#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests: `start DIR` makes a cluster in DIR (initdb, bytewise
# collation, UTF-8), starts it on a free loopback port with its socket in DIR, creates the database
# `caregate`, and prints its connection URI; `stop DIR` stops it. As root, the cluster runs as the
# `postgres` user (PostgreSQL refuses to run as root), which owns DIR. Nothing outside DIR is touched.
#
#   uri=$(tests/support/postgresql.sh start /tmp/pg)   # postgresql://caregate@127.0.0.1:PORT/caregate
#   tests/support/postgresql.sh stop /tmp/pg
#
# CAREGATE_PG_SHARED_BUFFERS sets the cluster's shared_buffers (default 128MB, small for tests; the
# benchmarks size it as a server would be, bench/run.sh).
set -euo pipefail

bin=/usr/lib/postgresql/15/bin
command=${1:?usage: postgresql.sh start|stop DIR}
dir=${2:?usage: postgresql.sh start|stop DIR}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$command" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/data" -U caregate --auth=trust --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1
    # Small and quick for tests: fsync stays on (the failover test counts on it), the socket in DIR.
    shared_buffers=${CAREGATE_PG_SHARED_BUFFERS:-128MB}
    [[ "$shared_buffers" =~ ^[0-9]+(kB|MB|GB)$ ]] || { echo "postgresql.sh: CAREGATE_PG_SHARED_BUFFERS '$shared_buffers' is not like 128MB" >&2; exit 2; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=300 -c shared_buffers=$shared_buffers" \
      start >/dev/null
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U caregate caregate
    echo "$port" >"$dir/port"
    echo "postgresql://caregate@127.0.0.1:$port/caregate"
    ;;
  stop)
    [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: postgresql.sh start|stop DIR" >&2
    exit 2
    ;;
esac
