#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for the importer tests.
#   pg.sh start            -> prints "DIR" (a mktemp dir); server listens on a private unix
#                             socket in DIR/sock on a random port, TCP disabled
#   pg.sh load DIR DB FILE -> creates database DB and loads FILE with psql -X -v ON_ERROR_STOP=1
#   pg.sh dsn DIR DB       -> prints a libpq URI for DB
#   pg.sh psql DIR DB ...  -> runs psql against DB (extra args passed through)
#   pg.sh stop DIR         -> stops the server and removes DIR
# initdb/pg_ctl refuse to run as root, so as root they run as user postgres (the directory is
# made reachable for it: mode 755, outside /root).
set -euo pipefail

bin=/usr/lib/postgresql/15/bin
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:-}
case "$cmd" in
start)
  dir=$(mktemp -d /tmp/koderid-pg.XXXXXX)
  chmod 755 "$dir"
  mkdir "$dir/sock"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir" "$dir/sock"; fi
  as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$(( 20000 + RANDOM % 40000 ))
    if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses='' -k $dir/sock -p $port -c fsync=off" start >/dev/null 2>&1; then
      echo "$port" >"$dir/port"
      echo "$dir"
      exit 0
    fi
  done
  cat "$dir/server.log" >&2 || true
  exit 1
  ;;
load)
  dir=$2; db=$3; file=$4; port=$(cat "$dir/port")
  psql -X -q -h "$dir/sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE \"$db\"" >/dev/null
  psql -X -q -h "$dir/sock" -p "$port" -U postgres -d "$db" -v ON_ERROR_STOP=1 -f "$file" \
    >"$dir/load-$db.log" 2>&1 || { tail -20 "$dir/load-$db.log" >&2; exit 1; }
  ;;
dsn)
  dir=$2; db=$3; port=$(cat "$dir/port")
  echo "postgresql://postgres@/$db?host=$dir/sock&port=$port"
  ;;
psql)
  dir=$2; db=$3; shift 3; port=$(cat "$dir/port")
  psql -X -h "$dir/sock" -p "$port" -U postgres -d "$db" -v ON_ERROR_STOP=1 "$@"
  ;;
stop)
  dir=$2
  [ -d "$dir/data" ] && as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: pg.sh start | load DIR DB FILE | dsn DIR DB | psql DIR DB ARGS | stop DIR" >&2
  exit 2
  ;;
esac
