#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, on a loopback port (CTest
# fixture "postgres", tests/CMakeLists.txt).
#   postgres_cluster.sh start STATE_DIR   initdb + pg_ctl start in a new /tmp folder;
#                                         writes STATE_DIR/url (postgresql://irt@127.0.0.1:PORT/postgres)
#   postgres_cluster.sh stop STATE_DIR    stops it and removes its folder
# PostgreSQL refuses to run as root: as root the cluster belongs to the
# 'postgres' account that Debian's package creates. Authentication is 'trust',
# on 127.0.0.1 only; fsync stays on, as in production.
set -euo pipefail
action=${1:?start or stop}
state=${2:?state directory}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "postgres_cluster.sh: PostgreSQL's server is not installed; run 'packaging/dev.sh deps'" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
  [ -f "$state/datadir" ] || return 0
  local data
  data=$(cat "$state/datadir")
  [ -d "$data" ] && as_owner "$bindir/pg_ctl" -D "$data/db" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$data" "$state/datadir" "$state/url"
}

case "$action" in
  start)
    mkdir -p "$state"
    stop
    data=$(mktemp -d /tmp/irt-pg.XXXXXX)
    echo "$data" >"$state/datadir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$data"
    as_owner "$bindir/initdb" -D "$data/db" --username=irt --auth=trust --encoding=UTF8 --no-locale >"$data/initdb.log" 2>&1 ||
      { cat "$data/initdb.log" >&2; exit 1; }
    for attempt in 1 2 3 4 5; do
      port=$((20000 + RANDOM % 12000))
      if as_owner "$bindir/pg_ctl" -D "$data/db" -l "$data/server.log" -w -t 60 \
           -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$data -c max_connections=200" \
           start >/dev/null; then
        echo "postgresql://irt@127.0.0.1:$port/postgres" >"$state/url"
        echo "PostgreSQL test cluster on 127.0.0.1:$port ($data)"
        exit 0
      fi
    done
    cat "$data/server.log" >&2
    echo "postgres_cluster.sh: the test cluster did not start (see above)" >&2
    exit 1 ;;
  stop) stop ;;
  *) echo "postgres_cluster.sh: unknown action '$action' (start or stop)" >&2; exit 2 ;;
esac
