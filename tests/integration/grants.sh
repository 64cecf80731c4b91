#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The token lifecycle against the real binary (issue 5): refresh rotation and reuse,
# client_credentials and jwt-bearer for machine users, private_key_jwt, introspection and
# revocation, and role claims from a grant, with openid-client and fetch (grants.mjs). Seeds
# a fresh store with the CLI as an operator would (`user add`, `client add`, `api add`,
# `machine add`, `machine key add`, `project add`, `role add`, `grant add`), starts `serve`
# on a free loopback port. grants_seed only reads stored hashes and locks a user, which no
# command does. TAP output.
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
project=$("$GW_BIN" client show "$WEB_ID" --json --config "$GW_CONF" | jq -r .project_id)
[ -n "$project" ] && [ "$project" != null ] || bail "no project id for the web client"
org=$("$GW_BIN" project list --json --config "$GW_CONF" | jq -r --arg p "$project" '.[] | select(.project_id == $p) | .org_id')
gw() { "$GW_BIN" "$@" --config "$GW_CONF"; }

# API apps, as an operator makes them: basic in the web client's project (a cost-10 secret,
# rehashed on first use), basic in another project, private_key_jwt with an RSA key.
api=$(gw api add --name "Orders API" --project "$project" --json) || bail "api add"
other_project=$(gw project add --name other) || bail "project add"
api_other=$(gw api add --name "Other API" --project "$other_project" --json) || bail "api add other"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$GW_TMP/pkj.pem" 2>/dev/null
openssl pkey -in "$GW_TMP/pkj.pem" -pubout -out "$GW_TMP/pkj.pub"
pkj=$(gw api add --name "Stock API" --project "$project" --auth-method private_key_jwt \
  --public-key-file "$GW_TMP/pkj.pub" --json) || bail "api add (private_key_jwt)"
# Machine users: opaque and JWT access tokens with secrets, and one with an EC key only.
m_opaque=$(gw machine add --username svc-opaque --secret --json) || bail "machine add"
m_jwt=$(gw machine add --username svc-jwt --access-token jwt --secret --json) || bail "machine add jwt"
m_key_id=$(gw machine add --username svc-key --access-token jwt) || bail "machine add key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$GW_TMP/mk.pem" 2>/dev/null
openssl pkey -in "$GW_TMP/mk.pem" -pubout -out "$GW_TMP/mk.pub"
m_kid=$(gw machine key add --user svc-key --public-key-file "$GW_TMP/mk.pub") || bail "machine key add"
# A role on the web client's project, granted to ada: the role claims at userinfo.
gw role add --project "$project" --key admin --display-name Administrator || bail "role add"
gw grant add --user ada --project "$project" --role admin >/dev/null || bail "grant add"
j() { jq -r "$2" <<<"$1"; }
gw_start || bail "serve did not start"

status=0
ISSUER="$GW_ISSUER" LOGIN=ada PASSWORD="$password" WEB_ID="$WEB_ID" WEB_SECRET="$WEB_SECRET" \
  POST_ID="$POST_ID" POST_SECRET="$POST_SECRET" PROJECT_ID="$project" ORG_ID="$org" \
  API_ID=$(j "$api" .client_id) API_SECRET=$(j "$api" .client_secret) \
  API_OTHER_ID=$(j "$api_other" .client_id) API_OTHER_SECRET=$(j "$api_other" .client_secret) \
  PKJ_ID=$(j "$pkj" .client_id) PKJ_KID=$(j "$pkj" .key_id) PKJ_KEY="$GW_TMP/pkj.pem" \
  PKJ_PUB="$GW_TMP/pkj.pub" \
  M_OPAQUE=svc-opaque M_OPAQUE_SECRET=$(j "$m_opaque" .client_secret) \
  M_OPAQUE_ID=$(j "$m_opaque" .user_id) \
  M_JWT=svc-jwt M_JWT_SECRET=$(j "$m_jwt" .client_secret) M_JWT_ID=$(j "$m_jwt" .user_id) \
  M_KEY_ID="$m_key_id" M_KID="$m_kid" M_KEY="$GW_TMP/mk.pem" \
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
  hash_is_cost4 client "$(j "$api" .client_id)"
check "the machine user's cost-10 secret was rehashed to bcrypt cost 4 after use" \
  hash_is_cost4 user "$(j "$m_opaque" .user_id)"
secrets="$(j "$api" .client_secret)|$(j "$api_other" .client_secret)|$(j "$m_opaque" .client_secret)|$(j "$m_jwt" .client_secret)"
no_token_in_log() { ! grep -qE "$secrets" "$GW_TMP/serve.log"; }
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
