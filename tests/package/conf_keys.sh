#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The packaged gateway.conf against the binary: it documents exactly the keys of the table in
# server/config.c (each set or shown commented), `check` accepts it as shipped (with only the
# paths moved into a temporary folder), and it accepts it with every commented line turned on
# (so every documented default and example is a valid value).
# Usage: conf_keys.sh BINARY SOURCE_ROOT. Ends with `N passed, N failed`.
set -euo pipefail
bin=$(readlink -f "$1")
src=$(cd "$2" && pwd)
conf=$src/packaging/debian/gateway.conf
tmp=$(mktemp -d /tmp/koder-conf-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
passed=0
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
fail() { echo "not ok - $*"; echo "$passed passed, 1 failed"; exit 1; }

grep -oP '^\s*\{"\K[a-z0-9_.]+(?=", CT_)' "$src/server/config.c" | sort >"$tmp/table"
[ "$(wc -l <"$tmp/table")" -gt 10 ] || fail "could not read the key table of server/config.c"
grep -oP '^#?\K[a-z0-9_.]+(?= = )' "$conf" | sort >"$tmp/documented"
diff -u "$tmp/table" "$tmp/documented" >"$tmp/diff" ||
  fail "gateway.conf and server/config.c disagree (- only in config.c, + only in gateway.conf): $(cat "$tmp/diff")"
[ -z "$(uniq -d "$tmp/documented")" ] || fail "keys documented twice: $(uniq -d "$tmp/documented")"
ok "gateway.conf documents the $(wc -l <"$tmp/table") keys of server/config.c, each once"

relocate() { # conf -> conf with the paths in $tmp
  sed -e "s|^\(#\?\)data_dir = .*|\1data_dir = $tmp/data|" \
    -e "s|^\(#\?\)master_key_file = .*|\1master_key_file = $tmp/master.key|" \
    -e "s|^\(#\?\)log_file = .*|\1log_file = $tmp/gateway.log|" "$1"
}
mkdir -p "$tmp/data"
head -c 32 /dev/urandom >"$tmp/master.key"
chmod 640 "$tmp/master.key" # as the package makes it
relocate "$conf" >"$tmp/shipped.conf"
# a store to check: one user
printf 'pw-%s\n' "$RANDOM" | "$bin" user add --config "$tmp/shipped.conf" --username conf \
  --email conf@example.com --password-stdin >"$tmp/out" 2>&1 || fail "user add: $(cat "$tmp/out")"
"$bin" check --config "$tmp/shipped.conf" >"$tmp/out" 2>&1 || fail "check on the shipped file: $(cat "$tmp/out")"
grep -q '^listen: 127.0.0.1:8190$' "$tmp/out" || fail "the shipped file does not listen on 127.0.0.1:8190: $(cat "$tmp/out")"
grep -qE '^[^#]*8090' "$tmp/shipped.conf" && fail "the shipped file sets v1's port 8090"
ok "check accepts the shipped file (listen 127.0.0.1:8190)"

# every commented `#key = value` turned on; the kdb-next lines are examples for storage =
# kdbnext, which check would then try to reach, so storage stays lmdb
relocate "$conf" | sed -E 's/^#([a-z0-9_.]+ = )/\1/' | sed -E 's/^storage = .*/storage = lmdb/' \
  >"$tmp/all.conf"
n=$(grep -cE '^[a-z0-9_.]+ = ' "$tmp/all.conf")
[ "$n" = "$(wc -l <"$tmp/table")" ] || fail "only $n keys set in the all-on file"
"$bin" check --config "$tmp/all.conf" >"$tmp/out" 2>&1 || fail "check with every line on: $(cat "$tmp/out")"
ok "check accepts the file with all $n keys on (every documented value is valid)"
echo "$passed passed, 0 failed"
