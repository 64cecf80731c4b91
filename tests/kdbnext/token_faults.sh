#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Storage-bound endpoints with kdb-next failing (run through `run.sh --gateway-env`, so the
# gateway of tests/integration/gateway.sh uses the reference server): while kdb-next refuses
# writes or is down, the token endpoint answers 503 with a JSON `temporarily_unavailable`
# error and hands out no token whose record was not written; when kdb-next is back, the same
# code is exchanged normally, without a restart. TAP output.
#
# usage: run.sh --gateway-env -- token_faults.sh path/to/koder-id-v2-gateway
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/gateway.sh"
GW_HERE=$here/../integration

bail() { echo "Bail out! $*"; exit 1; }
command -v jq >/dev/null || bail "jq missing: run scripts/deps.sh test"
[ "${KODER_ID_V2_STORAGE:-}" = kdbnext ] || bail "run me through tests/kdbnext/run.sh --gateway-env"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
  n=$((n + 1)); failed=1; echo "not ok $n - $1"; shift
  for l in "$@"; do printf '# %s\n' "$l"; done
}

seq=0
ctl() { # JSON object body; waits until server.py applied it
  seq=$((seq + 1))
  echo "{\"seq\": $seq, $1}" >"$KODER_TEST_KDB_CONTROL.w"
  mv "$KODER_TEST_KDB_CONTROL.w" "$KODER_TEST_KDB_CONTROL"
  for _ in $(seq 500); do
    [ "$(cat "$KODER_TEST_KDB_CONTROL.ack" 2>/dev/null)" = "$seq" ] && return 0
    sleep 0.01
  done
  bail "server.py did not apply control $seq"
}

gw_init "$1"
password="faults $RANDOM pass"
gw_user eve "$password" || bail "user add failed"
gw_client WEB --name "Web" --type web --auth-method basic \
  --redirect-uri https://app.example/cb || bail "client add"
gw_start || bail "serve did not start"
I=$GW_ISSUER
T=$GW_TMP
RU=https://app.example/cb
urlenc() { jq -rn --arg v "$1" '$v|@uri'; }

get_code() { # a code for WEB through the real login page
  local jar=$T/jar.$RANDOM loc page arid csrf cb
  loc=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" \
    "$I/oauth/v2/authorize?client_id=$(urlenc "$WEB_ID")&redirect_uri=$(urlenc "$RU")&response_type=code&scope=openid+profile&state=s1&nonce=n1")
  [ -n "$loc" ] || return 1
  page=$(curl -s -c "$jar" -b "$jar" "$loc")
  arid=$(grep -o 'name="authRequestID" value="[^"]*"' <<<"$page" | sed 's/.*value="//;s/"$//')
  csrf=$(grep -o 'name="csrf" value="[^"]*"' <<<"$page" | sed 's/.*value="//;s/"$//')
  cb=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" \
    --data-urlencode "authRequestID=$arid" --data-urlencode "csrf=$csrf" \
    --data-urlencode loginName=eve --data-urlencode "password=$password" "$I/ui/login/login")
  rm -f "$jar"
  sed -n 's/.*[?&]code=\([^&]*\).*/\1/p' <<<"$cb"
}

exchange() { # CODE: sets STATUS and BODY
  STATUS=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 30 -u "$WEB_ID:$WEB_SECRET" \
    -d grant_type=authorization_code -d "code=$1" --data-urlencode "redirect_uri=$RU" \
    "$I/oauth/v2/token")
  BODY=$(head -c 400 "$T/body")
}

expect_unavailable() { # DESC
  local err ct
  err=$(jq -r '.error // ""' <"$T/body" 2>/dev/null)
  if [ "$STATUS" = 503 ] && [ "$err" = temporarily_unavailable ] &&
    ! jq -e 'has("access_token") or has("id_token") or has("refresh_token")' <"$T/body" >/dev/null; then
    ok "$1"
  else
    not_ok "$1" "status $STATUS" "$BODY"
  fi
}

expect_tokens() { # DESC
  if [ "$STATUS" = 200 ] && jq -e '.access_token and .id_token' <"$T/body" >/dev/null; then
    ok "$1"
  else
    not_ok "$1" "status $STATUS" "$BODY"
  fi
}

echo "1..7"
code=$(get_code) && [ -n "$code" ] || bail "no code through the login page"
exchange "$code"
expect_tokens "code exchange on kdb-next"

# kdb-next refuses writes: consuming the code cannot be recorded, so no token
code=$(get_code) && [ -n "$code" ] || bail "no second code"
ctl '"fail_writes": true'
exchange "$code"
expect_unavailable "kdb-next refusing writes: 503 temporarily_unavailable, no token"
ctl '"fail_writes": false'
exchange "$code"
expect_tokens "the same code works once kdb-next takes writes again (it was not consumed)"
exchange "$code"
if [ "$STATUS" = 400 ] && [ "$(jq -r .error <"$T/body")" = invalid_grant ]; then
  ok "...and only once"
else
  not_ok "...and only once" "status $STATUS" "$BODY"
fi

# kdb-next down altogether
code=$(get_code) && [ -n "$code" ] || bail "no third code"
ctl '"down": true'
exchange "$code"
expect_unavailable "kdb-next down: 503 temporarily_unavailable, no token"
rz=$(curl -s -o /dev/null -w '%{http_code}' "$I/readyz")
if [ "$rz" = 503 ]; then ok "kdb-next down: /readyz 503"; else not_ok "kdb-next down: /readyz 503" "got $rz"; fi
ctl '"down": false'
for _ in $(seq 50); do
  exchange "$code"
  [ "$STATUS" = 503 ] || break
  sleep 0.1
done
expect_tokens "kdb-next back: the code is exchanged, no restart needed"

gw_stop || not_ok "serve stopped cleanly" "$(gw_log_tail 20)"
exit $failed
