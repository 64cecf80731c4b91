#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Key rotation against the real binary (issue 5): relying parties (jose) verify ID tokens and
# JWT access tokens continuously while `keys rotate` runs beside `serve` and the new key
# starts signing, then while two servers on one store rotate on schedule. The windows are
# made small through the configuration (publish ahead 12 s, JWKS max-age 2 s, reload every
# 1 s, token lifetimes 20 s, retire margin 2 s) so this takes about a minute. TAP output.
# Usage: keys_rotation.sh BINARY GRANTS_SEED
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/gateway.sh"

bail() { echo "Bail out! $*"; exit 1; }
[ -d "$here/node_modules/jose" ] || bail "jose missing in tests/integration: run scripts/deps.sh test"
command -v jq >/dev/null || bail "jq missing: run scripts/deps.sh test"

AHEAD=12 MAX_AGE=2 RELOAD=1 LIFETIME=20 MARGIN=2
gw_init "$1"
SEED_BIN=$(readlink -f "$2")
seed() { "$SEED_BIN" --config "$GW_CONF" "$@"; }
cat >>"$GW_CONF" <<CONF
keys.publish_ahead = $AHEAD
keys.jwks_max_age = $MAX_AGE
keys.reload_interval = $RELOAD
keys.retire_margin = $MARGIN
keys.rotate_every = 0
CONF
gw_user ada "pw $RANDOM $RANDOM" || bail "user add failed"
user_id=$(tail -1 "$GW_TMP/user.log")
[[ "$user_id" =~ ^[0-9]{18}$ ]] || bail "no user id from user add: $user_id"
gw_client RP --name "RP" --type web --auth-method post --access-token jwt \
  --redirect-uri https://rp.example/cb || bail "client add"
seed refresh "$RP_ID" || bail "seed refresh"
seed lifetimes "$LIFETIME" "$LIFETIME" || bail "seed lifetimes"
rt=$(seed rt "$RP_ID" "$user_id" 2) || bail "seed rt"
rt1=$(sed -n 1p <<<"$rt") rt2=$(sed -n 2p <<<"$rt")
gw_start || bail "serve did not start"

run_rp() { # MODE RT BASES JWKS_BASE; TAP into $GW_TMP/MODE.tap, numbering continued by the caller
  ISSUER="$GW_ISSUER" BASES="$3" JWKS_BASE="$4" BIN="$GW_BIN" CONF="$GW_CONF" \
    CLIENT_ID="$RP_ID" CLIENT_SECRET="$RP_SECRET" RT="$2" MODE="$1" \
    PUBLISH_AHEAD=$AHEAD MAX_AGE=$MAX_AGE RELOAD=$RELOAD LIFETIME=$LIFETIME MARGIN=$MARGIN \
    node "$here/keys_rotation.mjs" >"$GW_TMP/$1.tap" || return 1
}

status=0
n=0
emit() { # FILE: its TAP lines renumbered after the ones printed so far
  local line
  while IFS= read -r line; do
    if [[ "$line" =~ ^(not\ )?ok\ [0-9]+\ (.*)$ ]]; then
      n=$((n + 1))
      echo "${BASH_REMATCH[1]}ok $n ${BASH_REMATCH[2]}"
    elif [[ "$line" == \#* ]]; then
      echo "$line"
    fi
  done <"$1"
}
check() { # description, then a command
  local d=$1
  shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; status=1; fi
}

# 1. `keys rotate` beside a running serve; the old key's whole retirement.
run_rp manual "$rt1" "$GW_ISSUER" "$GW_ISSUER" || status=1
emit "$GW_TMP/manual.tap"
check "the server is still serving" gw_alive
check "the server logged the expired key's removal" grep -q 'past their publication window removed' "$GW_TMP/serve.log"
check "serve stops cleanly" gw_stop

# 2. Two servers on the same store, each rotating every second of signing: never two
#    pending keys, tokens from both verified at RPs reading the other one's JWKS.
sed -i 's/^keys.rotate_every = .*/keys.rotate_every = 1/' "$GW_CONF"
KEYS_BEFORE=$("$GW_BIN" keys list --json --config "$GW_CONF") || bail "keys list"
export KEYS_BEFORE
gw_start || bail "serve A did not start"
A_PID=$GW_PID A_ISSUER=$GW_ISSUER
port_b=$(gw_free_port)
"$GW_BIN" serve --config "$GW_CONF" --set "listen=127.0.0.1:$port_b" >"$GW_TMP/serve_b.log" 2>&1 &
B_PID=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port_b/healthz" 2>/dev/null && break
  sleep 0.1
done
run_rp scheduled "$rt2" "$A_ISSUER http://127.0.0.1:$port_b" "http://127.0.0.1:$port_b" || status=1
emit "$GW_TMP/scheduled.tap"
rotations=$(cat "$GW_TMP/serve.log" "$GW_TMP/serve_b.log" | grep -c 'keys: scheduled rotation: key' || true)
check "the servers logged each scheduled rotation once ($rotations)" test "$rotations" -ge 2
check "server B is still serving" curl -fsS -o /dev/null "http://127.0.0.1:$port_b/healthz"
kill -TERM "$B_PID"
b_rc=0
wait "$B_PID" || b_rc=$?
check "server B stops cleanly" test "$b_rc" -eq 0
check "no sanitizer report from server B" bash -c "! grep -qE 'Sanitizer|runtime error:' '$GW_TMP/serve_b.log'"
check "server A stops cleanly" gw_stop
grep -q '^not ok' "$GW_TMP/manual.tap" "$GW_TMP/scheduled.tap" && status=1
if [ $status -ne 0 ]; then
  echo "# server log:"
  gw_log_tail 60
  sed 's/^/#   B: /' "$GW_TMP/serve_b.log" | tail -30
fi
echo "1..$n"
exit $status
