#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Discovery lists exactly what is implemented (issue 5): on the imported Koder inventory,
# discovery.mjs exercises every value of every field of /.well-known/openid-configuration
# against the real endpoints (each grant type, client authentication method and signing
# algorithm, response type and mode, scope, claim, PKCE method, flag), checks that the known
# values it does not list are refused, and fails on any field it does not know how to check.
# grants_seed adds what the inventory lacks: an ES256 key beside the private_key_jwt app's
# RS256 one, a key for the machine user (jwt-bearer), and root's nickname, gender and phone
# (so that every listed claim can appear). TAP output. Usage: discovery.sh GATEWAY GRANTS_SEED
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/gateway.sh"
src=${KODER_SRC:-$(cd "$here/../.." && pwd)}
fx=${KODER_FIXTURES:-$src/../shared/fixtures/zitadel}

bail() { echo "Bail out! $*"; exit 1; }
[ -d "$here/node_modules/openid-client" ] ||
  bail "openid-client missing in tests/integration: run scripts/deps.sh test"
command -v jq >/dev/null || bail "jq missing: run scripts/deps.sh test"
command -v openssl >/dev/null || bail "openssl missing"
[ -f "$fx/koder-inventory.sql" ] || bail "fixtures not found in $fx"

gw_init "$1"
seed_bin=$(readlink -f "$2")
seed() { "$seed_bin" --config "$GW_CONF" "$@"; }
gw_import "$fx/koder-inventory.sql" inv || bail "cannot import the inventory"

vault=250000000251651078 # private_key_jwt app (its RS256 key is imported)
machine=$(jq -r '.machines["platform-admin"].id' "$fx/secrets.json")
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$GW_TMP/ec.pem" 2>/dev/null
openssl pkey -in "$GW_TMP/ec.pem" -pubout -out "$GW_TMP/ec.pub"
seed key $vault ec1 "$GW_TMP/ec.pub" 0 || bail "seed the app's ES256 key"
seed key "$machine" mk1 "$GW_TMP/ec.pub" 1 || bail "seed the machine user's key"
seed profile "$(jq -r .users.root.id "$fx/secrets.json")" rooty 3 +41790000000 || bail "seed profile"
gw_start || bail "serve did not start on the imported store"

status=0
ISSUER="$GW_ISSUER" SECRETS="$fx/secrets.json" EC_KEY="$GW_TMP/ec.pem" MACHINE="$machine" \
  node "$here/discovery.mjs" >"$GW_TMP/rp.tap" || status=1
cat "$GW_TMP/rp.tap"
n=$(grep -cE '^(not )?ok ' "$GW_TMP/rp.tap")
check() { # description, then a command
  local d=$1
  shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; status=1; fi
}
check "the server is still serving" gw_alive
if [ $status -ne 0 ]; then
  echo "# server log:"
  gw_log_tail 40
fi
check "the server stops cleanly, no sanitizer report" gw_stop
echo "1..$n"
exit $status
