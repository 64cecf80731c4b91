#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The token lifecycle against the real binary (issue 5): refresh rotation and reuse,
# client_credentials and jwt-bearer for machine users, private_key_jwt, introspection and
# revocation, with openid-client and fetch (grants.mjs). Seeds a fresh store with the CLI
# (`user add`, `client add`) and grants_seed (machine users, API apps, keys, the refresh
# grant), starts `serve` on a free loopback port. TAP output.
# Usage: grants.sh BINARY GRANTS_SEED
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/gateway.sh"

bail() { echo "Bail out! $*"; exit 1; }
[ -d "$here/node_modules/openid-client" ] ||
  bail "openid-client missing in tests/integration: run scripts/deps.sh test"
command -v jq >/dev/null || bail "jq missing: run scripts/deps.sh test"
command -v openssl >/dev/null || bail "openssl missing"

gw_init "$1"
SEED_BIN=$(readlink -f "$2")
seed() { "$SEED_BIN" --config "$GW_CONF" "$@"; }
password="correct horse $RANDOM battery"
gw_user ada "$password" || bail "user add failed"
gw_client WEB --name "Web" --type web --auth-method basic --client-id "338293186697035779@koder_shop" \
  --redirect-uri https://app.example/cb || bail "client add (web)"
gw_client POST --name "Web post" --type web --auth-method post --access-token jwt \
  --redirect-uri https://post.example/cb || bail "client add (post)"
seed refresh "$WEB_ID" && seed refresh "$POST_ID" || bail "seed refresh"
project=$("$GW_BIN" client show "$WEB_ID" --json --config "$GW_CONF" | jq -r .project_id)
[ -n "$project" ] && [ "$project" != null ] || bail "no project id for the web client"

# API apps: basic in the web client's project (cost-10 secret, rehashed on first use), basic
# elsewhere, private_key_jwt with an RSA key. Machine users: opaque, JWT, and one with a key.
api_secret=$(head -c 48 /dev/urandom | base64 | tr -dc A-Za-z0-9 | head -c 40)
seed api 900000000000000001 "$WEB_ID" 0 "$api_secret" || bail "seed api"
seed api 900000000000000002 - 0 "$api_secret" || bail "seed api other"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$GW_TMP/pkj.pem" 2>/dev/null
openssl pkey -in "$GW_TMP/pkj.pem" -pubout -out "$GW_TMP/pkj.pub"
seed api 900000000000000003 "$WEB_ID" 3 - || bail "seed api pkj"
seed key 900000000000000003 pk1 "$GW_TMP/pkj.pub" 0 || bail "seed key"
seed machine 910000000000000001 svc-opaque machine-secret-1 10 0 || bail "seed machine"
seed machine 910000000000000002 svc-jwt machine-secret-2 4 1 || bail "seed machine jwt"
seed machine 910000000000000003 svc-key unused-secret 4 1 || bail "seed machine key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$GW_TMP/mk.pem" 2>/dev/null
openssl pkey -in "$GW_TMP/mk.pem" -pubout -out "$GW_TMP/mk.pub"
seed key 910000000000000003 mk "$GW_TMP/mk.pub" 1 || bail "seed machine key"
gw_start || bail "serve did not start"

status=0
ISSUER="$GW_ISSUER" LOGIN=ada PASSWORD="$password" WEB_ID="$WEB_ID" WEB_SECRET="$WEB_SECRET" \
  POST_ID="$POST_ID" POST_SECRET="$POST_SECRET" PROJECT_ID="$project" \
  API_ID=900000000000000001 API_SECRET="$api_secret" \
  API_OTHER_ID=900000000000000002 API_OTHER_SECRET="$api_secret" \
  PKJ_ID=900000000000000003 PKJ_KEY="$GW_TMP/pkj.pem" PKJ_PUB="$GW_TMP/pkj.pub" \
  M_OPAQUE=svc-opaque M_OPAQUE_SECRET=machine-secret-1 M_OPAQUE_ID=910000000000000001 \
  M_JWT=svc-jwt M_JWT_SECRET=machine-secret-2 M_JWT_ID=910000000000000002 \
  M_KEY_ID=910000000000000003 M_KEY="$GW_TMP/mk.pem" \
  SEED="$SEED_BIN --config $GW_CONF" \
  node "$here/grants.mjs" >"$GW_TMP/grants.tap" || status=$?
cat "$GW_TMP/grants.tap"
n=$(grep -cE '^(not )?ok ' "$GW_TMP/grants.tap")
check() { # description, then a command
  local d=$1
  shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; status=1; fi
}
hash_is_cost4() { [[ "$(seed hash "$@")" == '$2b$04$'* ]]; }
check "the API app's cost-10 secret was rehashed to bcrypt cost 4 after use" \
  hash_is_cost4 client 900000000000000001
check "the machine user's cost-10 secret was rehashed to bcrypt cost 4 after use" \
  hash_is_cost4 user 910000000000000001
no_token_in_log() { ! grep -qE 'machine-secret|'"$api_secret" "$GW_TMP/serve.log"; }
check "no secret in the server log" no_token_in_log
reuse_logged() { grep -q 'refresh token reuse: family' "$GW_TMP/serve.log"; }
check "refresh token reuse is logged" reuse_logged
check "the server is still serving after the suite" gw_alive
if [ $status -ne 0 ]; then
  echo "# server log:"
  gw_log_tail 60
fi
check "the server stops cleanly, no sanitizer report" gw_stop
echo "1..$n"
exit $status
