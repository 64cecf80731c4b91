#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The gateway on storage = kdbnext, against the reference server (run through run.sh, which
# exports KODER_TEST_KDB_*): `check` reports whether kdb-next answers and accepts the token,
# refuses a preseeded tenant; `serve` answers /readyz 503 while kdb-next is down and recovers
# by itself when it is back. TAP output.
#
# usage: run.sh -- serve_faults.sh path/to/koder-id-v2-gateway
set -uo pipefail
bin=$1
dir=$KODER_TEST_KDB_DIR
# h2o's per-thread buffer caches, released by the process exit (see that file)
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$(cd "$(dirname "$0")/../integration" && pwd)/lsan.supp"
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
check() { # description, then a command: ok when it succeeds
  local d=$1; shift
  if "$@"; then ok "$d"; else not_ok "$d"; fi
}

seq=0
ctl() { # body of a JSON object; waits until server.py applied it
  seq=$((seq + 1))
  echo "{\"seq\": $seq, $1}" >"$KODER_TEST_KDB_CONTROL.w"
  mv "$KODER_TEST_KDB_CONTROL.w" "$KODER_TEST_KDB_CONTROL"
  for _ in $(seq 500); do
    [ "$(cat "$KODER_TEST_KDB_CONTROL.ack" 2>/dev/null)" = "$seq" ] && return 0
    sleep 0.01
  done
  echo "# server.py did not apply control $seq"
  return 1
}

mkdir -p "$dir/data"
conf=$dir/gateway.conf
cat >"$conf" <<CONF
listen = 127.0.0.1:0
data_dir = $dir/data
master_key_file = $dir/master.key
storage = kdbnext
kdbnext.address = $KODER_TEST_KDB_ADDRESS
kdbnext.token_file = $KODER_TEST_KDB_TOKEN_FILE
kdbnext.tenant = 1000077
kdbnext.timeout_ms = 1000
kdbnext.plaintext = ${KODER_TEST_KDB_PLAINTEXT/1/on}
CONF
if [ -n "${KODER_TEST_KDB_CA:-}" ]; then
  echo "kdbnext.tls_ca_file = $KODER_TEST_KDB_CA" >>"$conf"
  sed -i 's/^kdbnext.plaintext = .*/kdbnext.plaintext = off/' "$conf"
fi
echo "wrong-token" >"$dir/bad-token"

echo "1..9"

# check: kdb-next answers and takes the token (no master key yet: serve creates it)
out=$("$bin" check --config "$conf" 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q "storage: kdbnext at $KODER_TEST_KDB_ADDRESS, tenant 1000077 (answers, token accepted)" <<<"$out"; then
  ok "check: kdb-next answers and accepts the token"
else
  not_ok "check: kdb-next answers and accepts the token" "rc=$rc" "$out"
fi

out=$("$bin" check --config "$conf" --set "kdbnext.token_file=$dir/bad-token" 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -qi "token" <<<"$out" && ! grep -q "wrong-token" <<<"$out"; then
  ok "check: a refused token is reported (and not printed)"
else
  not_ok "check: a refused token is reported (and not printed)" "rc=$rc" "$out"
fi

out=$("$bin" check --config "$conf" --set kdbnext.tenant=1000000 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -q "preseeded" <<<"$out"; then
  ok "check: tenant 1000000 is refused as kdb-next's preseeded range"
else
  not_ok "check: tenant 1000000 is refused as kdb-next's preseeded range" "rc=$rc" "$out"
fi

# serve
"$bin" serve --config "$conf" 2>"$dir/serve.log" &
spid=$!
trap 'kill $spid 2>/dev/null; wait $spid 2>/dev/null' EXIT
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/serve.log" | head -1)
  [ -n "$port" ] && break
  kill -0 $spid 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  not_ok "serve starts on storage = kdbnext" "$(tail -5 "$dir/serve.log")"
  exit 1
fi
ok "serve starts on storage = kdbnext"

readyz() { curl -s -o "$dir/readyz.body" -w '%{http_code}' "http://127.0.0.1:$port/readyz"; }
check "/readyz 200 while kdb-next answers" test "$(readyz)" = 200

ctl '"down": true'
code=$(readyz)
if [ "$code" = 503 ] && grep -q unavailable "$dir/readyz.body"; then
  ok "/readyz 503 while kdb-next is down"
else
  not_ok "/readyz 503 while kdb-next is down" "code=$code" "$(cat "$dir/readyz.body")"
fi

out=$("$bin" check --config "$conf" 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -q "unreachable" <<<"$out"; then
  ok "check: kdb-next down is reported"
else
  not_ok "check: kdb-next down is reported" "rc=$rc" "$out"
fi

ctl '"down": false'
code=
for _ in $(seq 50); do
  code=$(readyz)
  [ "$code" = 200 ] && break
  sleep 0.1
done
check "/readyz back to 200 by itself when kdb-next is back" test "$code" = 200

kill -TERM $spid
wait $spid
rc=$?
if [ $rc -eq 0 ]; then
  ok "serve stops cleanly on SIGTERM"
else
  not_ok "serve stops cleanly on SIGTERM" "exit status $rc" "$(tail -40 "$dir/serve.log")"
fi
exit $failed
