#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# openid-client as the relying party against the real binary (issue 3): seeds a fresh store
# with `user add` and five `client add`s (web basic with a v1 '@' client id, web post + JWT
# access token, SPA, native, a legacy SPA with v1's implicit response types),
# starts `serve` on a free loopback port and runs oidc_rp.mjs. TAP output.
# Usage: oidc_rp.sh BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/gateway.sh"

bail() { echo "Bail out! $*"; exit 1; }
[ -d "$here/node_modules/openid-client" ] ||
  bail "openid-client missing in tests/integration: run scripts/deps.sh test"
command -v jq >/dev/null || bail "jq missing: run scripts/deps.sh test"

gw_init "$1"
password="correct horse $RANDOM battery"
gw_user ada "$password" || bail "user add failed"
# A v1-shaped client id ("<id>@<project>"): openid-client form-encodes it into Basic.
gw_client WEB --name "Web" --type web --auth-method basic --client-id "338293186697035779@koder_shop" \
  --redirect-uri https://app.example/cb || bail "client add (web)"
gw_client POST --name "Web post" --type web --auth-method post --access-token jwt \
  --redirect-uri https://post.example/cb || bail "client add (post)"
gw_client SPA --name "SPA" --type spa --redirect-uri https://spa.example/cb || bail "client add (spa)"
gw_client NATIVE --name "Native" --type native --redirect-uri http://127.0.0.1/cb ||
  bail "client add (native)"
gw_client IMPLICIT --name "Legacy implicit" --type spa --response-type id_token \
  --response-type 'id_token token' --redirect-uri https://implicit.example/cb ||
  bail "client add (implicit)"
gw_start || bail "serve did not start"

status=0
ISSUER="$GW_ISSUER" LOGIN=ada PASSWORD="$password" WEB_ID="$WEB_ID" WEB_SECRET="$WEB_SECRET" \
  POST_ID="$POST_ID" POST_SECRET="$POST_SECRET" SPA_ID="$SPA_ID" NATIVE_ID="$NATIVE_ID" \
  IMPLICIT_ID="$IMPLICIT_ID" \
  node "$here/oidc_rp.mjs" >"$GW_TMP/rp.tap" || status=$?
cat "$GW_TMP/rp.tap"
n=$(grep -cE '^(not )?ok ' "$GW_TMP/rp.tap")
check() { # description, then a command
  local d=$1
  shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; status=1; fi
}
check "the server is still serving after the suite" gw_alive
if [ $status -ne 0 ]; then
  echo "# server log:"
  gw_log_tail 60
fi
check "the server stops cleanly, no sanitizer report" gw_stop
echo "1..$n"
exit $status
