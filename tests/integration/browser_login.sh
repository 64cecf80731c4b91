#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The login page in a real browser (issue 3): seeds a fresh store with `user add` and
# `client add` (and a user whose temporary password, set with `user password
# --change-required`, must be changed at sign-in), starts `serve` on a free loopback port, and
# runs browser_login.mjs (headless Debian Chromium via playwright-core) against it.
# Usage: browser_login.sh BINARY
set -euo pipefail
bin=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)

fail() { echo "not ok - $*"; echo "1 failed"; exit 1; }
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium missing: run scripts/deps.sh test"
[ -d "$here/node_modules/playwright-core" ] ||
  fail "playwright-core missing in tests/integration: run scripts/deps.sh test"

tmp=$(mktemp -d /tmp/koder-browser-XXXXXX)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

password="correct horse $RANDOM battery"
start_server() {
  port=$(free_port)
  issuer="http://127.0.0.1:$port"
  cat >"$tmp/gateway.conf" <<CONF
issuer = $issuer
listen = 127.0.0.1:$port
data_dir = $tmp/data
master_key_file = $tmp/master.key
password.yescrypt_cost = 3
log_level = info
CONF
  "$bin" serve --config "$tmp/gateway.conf" >"$tmp/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$issuer/healthz" 2>/dev/null; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  return 1
}

mkdir -p "$tmp/data"
cat >"$tmp/gateway.conf" <<CONF
issuer = http://127.0.0.1:1
data_dir = $tmp/data
master_key_file = $tmp/master.key
CONF
printf '%s\n' "$password" | "$bin" user add --config "$tmp/gateway.conf" --username alice \
  --email alice@example.com --given-name Alice --family-name Test --password-stdin \
  >"$tmp/user.log" 2>&1 || { cat "$tmp/user.log"; fail "user add"; }
"$bin" client add --config "$tmp/gateway.conf" --name "Browser Test App" --type native \
  --auth-method none --redirect-uri http://127.0.0.1/cb >"$tmp/client.log" 2>&1 ||
  { cat "$tmp/client.log"; fail "client add"; }
# bea must choose a new password at her first sign-in: an operator set a temporary one.
printf 'first %s\n' "$password" | "$bin" user add --config "$tmp/gateway.conf" --username bea \
  --email bea@example.com --password-stdin >"$tmp/user2.log" 2>&1 ||
  { cat "$tmp/user2.log"; fail "user add (bea)"; }
temporary="temporary $RANDOM pass"
printf '%s\n' "$temporary" | "$bin" user password --config "$tmp/gateway.conf" --user bea \
  --password-stdin --change-required >"$tmp/user3.log" 2>&1 ||
  { cat "$tmp/user3.log"; fail "user password --change-required (bea)"; }
client_id=$(sed -n 's/^client_id: //p' "$tmp/client.log")
[ -n "$client_id" ] || { cat "$tmp/client.log"; fail "no client_id from client add"; }

started=0
for _ in 1 2 3; do # a port taken between the probe and the bind: try another
  if start_server; then started=1; break; fi
done
[ $started = 1 ] || { cat "$tmp/serve.log"; fail "serve did not start"; }

status=0
ISSUER="$issuer" CLIENT_ID="$client_id" LOGIN=alice PASSWORD="$password" \
  CHANGE_LOGIN=bea CHANGE_PASSWORD="$temporary" node "$here/browser_login.mjs" || status=$?
kill "$server_pid" 2>/dev/null || true
wait "$server_pid" 2>/dev/null || true
server_pid=
# Memory errors and UB fail the test; leak reports at exit belong to the server suites.
if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$tmp/serve.log"; then
  echo "not ok - sanitizer report from the server"; status=1
fi
if [ $status -ne 0 ]; then
  echo "# server log:"; sed 's/^/#   /' "$tmp/serve.log" | tail -40
fi
exit $status
