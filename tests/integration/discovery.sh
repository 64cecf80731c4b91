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

bail() { echo "Bail out! $*"; exit 1; }
gw_need_rp
command -v openssl >/dev/null || bail "openssl missing"
gw_inventory "$1" "$2"
fx=$GW_FX

vault=250000000251651078 # private_key_jwt app (its RS256 key is imported)
machine=$(jq -r '.machines["platform-admin"].id' "$fx/secrets.json")
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$GW_TMP/ec.pem" 2>/dev/null
openssl pkey -in "$GW_TMP/ec.pem" -pubout -out "$GW_TMP/ec.pub"
gw_seed key $vault ec1 "$GW_TMP/ec.pub" 0 || bail "seed the app's ES256 key"
gw_seed key "$machine" mk1 "$GW_TMP/ec.pub" 1 || bail "seed the machine user's key"
gw_seed profile "$(jq -r .users.root.id "$fx/secrets.json")" rooty 3 +41790000000 || bail "seed profile"
gw_start || bail "serve did not start on the imported store"

gw_node_tap "$here/discovery.mjs" ISSUER="$GW_ISSUER" SECRETS="$fx/secrets.json" \
  EC_KEY="$GW_TMP/ec.pem" MACHINE="$machine"
gw_tap_end
