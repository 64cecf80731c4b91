#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `export` and `import-backup` with the real binary: a dump taken while serve runs,
# restored into a new data dir, serves the same signing key and holds the same users and
# clients; damaged and truncated dumps are refused before anything is written; an existing
# file is never overwritten; a store with data is refused unless --merge. TAP output.
# Each data dir is a store of its own: on LMDB, and under tests/kdbnext/run.sh --gateway-env
# a kdb-next tenant per data dir (tests/lib/stores.sh).
#
# usage: backup.sh path/to/koder-id-v2-gateway
set -uo pipefail
bin=$1
source "$(dirname "$0")/../lib/stores.sh"
backend=lmdb
stores_kdbnext && backend=kdbnext
dir=$(mktemp -d)
serve_pid=
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
expect() { # description, expected rc, then a command; its output goes to $dir/out
  local d=$1 want=$2; shift 2
  "$@" >"$dir/out" 2>&1
  local rc=$?
  if [ $rc -eq "$want" ]; then ok "$d"; else not_ok "$d" "rc=$rc (want $want)" "$(head -5 "$dir/out")"; fi
}

conf=$dir/gateway.conf
cat >"$conf" <<CONF
listen = 127.0.0.1:0
master_key_file = $dir/master.key
CONF
at() { # data dir, then a command and its arguments: the command on that data dir's store
  local d=$1 f
  shift
  store_flags f "$d"
  "$bin" "$@" --config "$conf" "${f[@]}"
}
g() { at "$dir/a" "$@"; } # the first store
ta=$(store_tenant "$dir/a")

# serve on a free port (listen 0), until it says where
start_serve() { # data dir
  # the binary itself, not a function (a subshell's pid would leave the server running)
  local f
  store_flags f "$1"
  "$bin" serve --config "$conf" "${f[@]}" 2>"$dir/serve.log" &
  serve_pid=$!
  port=
  for _ in $(seq 200); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/serve.log" | head -1)
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  return 1
}
stop_serve() {
  kill "$serve_pid" 2>/dev/null
  wait "$serve_pid" 2>/dev/null
  serve_pid=
}
kids() { curl -sf "http://127.0.0.1:$port/oauth/v2/keys" | /usr/bin/python3 -c \
  'import json,sys; print(" ".join(sorted(k["kid"] for k in json.load(sys.stdin)["keys"])))'; }

echo "1..23"

# some data: a user, a client, and the signing key serve makes
echo "correct horse battery" | g user add --username alice --email alice@example.com \
  --password-stdin >"$dir/uid" 2>"$dir/err"
cid=$(g client add --name app --type web --redirect-uri https://app.example/cb --json 2>>"$dir/err" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
if [ -s "$dir/uid" ] && [ -n "$cid" ] && start_serve "$dir/a"; then
  ok "a store with a user, a client and a running server"
else
  not_ok "a store with a user, a client and a running server" "$(cat "$dir/err" "$dir/serve.log" | tail -5)"
fi
kids_a=$(kids)

# export while serve holds the store
expect "export while serve runs" 0 g export "$dir/one.bak"
if grep -q "^exported [0-9]* entries ([0-9]* bytes) of tenant $ta to $dir/one.bak$" "$dir/out"; then
  ok "export says what it wrote"
else
  not_ok "export says what it wrote" "$(cat "$dir/out")"
fi
if head -2 "$dir/one.bak" | grep -q "^tenant $ta created_ms [0-9]* backend $backend\$"; then
  ok "the dump's header names the tenant and backend"
else
  not_ok "the dump's header names the tenant and backend" "$(head -2 "$dir/one.bak" | cat -v)"
fi
mode=$(stat -c %a "$dir/one.bak" 2>/dev/null)
if [ "$mode" = 600 ] && ! ls "$dir" | grep -q part; then
  ok "the dump is 0600 and no partial file is left"
else
  not_ok "the dump is 0600 and no partial file is left" "mode=$mode" "$(ls "$dir")"
fi
cp "$dir/one.bak" "$dir/copy"
expect "export refuses an existing file" 1 g export "$dir/one.bak"
if cmp -s "$dir/one.bak" "$dir/copy" && grep -q "exists" "$dir/out"; then
  ok "the existing file is untouched"
else
  not_ok "the existing file is untouched" "$(cat "$dir/out")"
fi
stop_serve

# damaged and truncated dumps: refused, nothing written
size=$(stat -c %s "$dir/one.bak")
head -c $((size - 7)) "$dir/one.bak" >"$dir/short.bak"
expect "a truncated dump is refused" 1 at "$dir/c" import-backup "$dir/short.bak"
/usr/bin/python3 - "$dir/one.bak" "$dir/flip.bak" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0x01
open(sys.argv[2], "wb").write(b)
PY
expect "a dump with one flipped bit is refused" 1 at "$dir/c" import-backup "$dir/flip.bak"
if grep -q "checksum\|damaged\|range\|order" "$dir/out"; then ok "the refusal says why"; else not_ok "the refusal says why" "$(cat "$dir/out")"; fi
at "$dir/c" export - 2>"$dir/out" >"$dir/c.bak"
if grep -q "^exported 0 entries" "$dir/out"; then
  ok "nothing was written by the refused imports"
else
  not_ok "nothing was written by the refused imports" "$(cat "$dir/out")"
fi

# restore into a new data dir, and serve from it
expect "import-backup into a new data dir" 0 at "$dir/b" import-backup "$dir/one.bak"
g client show "$cid" --json >"$dir/show.a" 2>&1
at "$dir/b" client show "$cid" --json >"$dir/show.b" 2>&1
if [ -s "$dir/show.a" ] && cmp -s "$dir/show.a" "$dir/show.b"; then
  ok "the restored client is the same"
else
  not_ok "the restored client is the same" "$(cat "$dir/show.a" "$dir/show.b")"
fi
g check >"$dir/check.a" 2>&1
at "$dir/b" check >"$dir/check.b" 2>&1
if diff <(grep -v '^storage:' "$dir/check.a") <(grep -v '^storage:' "$dir/check.b") >/dev/null &&
  grep -q '^users: 1' "$dir/check.b"; then
  ok "check shows the same contents"
else
  not_ok "check shows the same contents" "$(diff "$dir/check.a" "$dir/check.b")"
fi
if start_serve "$dir/b" && [ -n "$kids_a" ] && [ "$(kids)" = "$kids_a" ]; then
  ok "the restored store serves the same signing keys"
else
  not_ok "the restored store serves the same signing keys" "a: $kids_a" "$(tail -3 "$dir/serve.log")"
fi
stop_serve

# a store with data is refused unless --merge
expect "import-backup refuses a store with data" 1 at "$dir/b" import-backup "$dir/one.bak"
expect "import-backup --merge accepts it" 0 at "$dir/b" import-backup --merge "$dir/one.bak"
# --replace: the store becomes the dump again (the user added after it is gone)
echo "another password here" | at "$dir/b" user add --username bob --email bob@example.com \
  --password-stdin >/dev/null 2>&1
at "$dir/b" check >"$dir/check.b2" 2>&1
expect "import-backup --replace accepts it" 0 at "$dir/b" import-backup --replace "$dir/one.bak"
at "$dir/b" check >"$dir/check.b3" 2>&1
if grep -q '^users: 2' "$dir/check.b2" &&
  diff <(grep -v '^storage:' "$dir/check.a") <(grep -v '^storage:' "$dir/check.b3") >/dev/null; then
  ok "after --replace the store holds exactly the dump"
else
  not_ok "after --replace the store holds exactly the dump" "$(cat "$dir/check.b2")" "$(diff "$dir/check.a" "$dir/check.b3")"
fi
expect "--replace with --merge is a usage error" 2 g import-backup --replace --merge "$dir/one.bak"

# stdout to stdin
g export - 2>/dev/null | at "$dir/d" import-backup - >"$dir/out" 2>&1
if grep -q "^imported [1-9][0-9]* entries into tenant $(store_tenant "$dir/d")" "$dir/out"; then
  ok "export - | import-backup -"
else
  not_ok "export - | import-backup -" "$(cat "$dir/out")"
fi

expect "export without FILE is a usage error" 2 g export

# As root on a data dir of the service's user, commands switch to that user
# (server/privdrop.h): export must still write where only root may (a 0700 folder).
if stores_kdbnext; then
  ok "export from the service user's store into a root-only folder # SKIP only an LMDB data dir has an owner to switch to"
elif [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  cp -a "$dir/b" "$dir/e"
  chown -R nobody "$dir/e"
  chmod 755 "$dir"
  mkdir -m 700 "$dir/rootonly"
  at "$dir/e" export "$dir/rootonly/priv.bak" >"$dir/out" 2>&1
  rc=$?
  if [ $rc -eq 0 ] && [ "$(stat -c '%U %a' "$dir/rootonly/priv.bak")" = "root 600" ] &&
    at "$dir/f" import-backup "$dir/rootonly/priv.bak" >>"$dir/out" 2>&1; then
    ok "export from the service user's store into a root-only folder"
  else
    not_ok "export from the service user's store into a root-only folder" "rc=$rc" "$(cat "$dir/out")"
  fi
else
  ok "export from the service user's store into a root-only folder # SKIP not root"
fi
exit $failed
