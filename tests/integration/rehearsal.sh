#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The cutover rehearsal (issue 4): import the Koder inventory from a real PostgreSQL, start
# `serve` on the imported store, then
#   - openid-client signs in as v1's root through a confidential web app (client_secret_basic,
#     its v1 secret), a public SPA (PKCE) and a native app (loopback redirect): sub = root's v1
#     id, aud holds the client_id; root's old password is refused (rehearsal.mjs);
#   - every OIDC app secret in secrets.json authenticates its client at the token endpoint
#     with the app's own method (basic or post), and a wrong secret does not;
#   - the JWKS publishes v1's unexpired public key next to v2's, not the expired one.
# TAP output. Usage: rehearsal.sh GATEWAY STORE_DUMP
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/gateway.sh"
src=${KODER_SRC:-$(cd "$here/../.." && pwd)}
fx=${KODER_FIXTURES:-$src/../shared/fixtures/zitadel}
dump=$(readlink -f "$2")
py=/usr/bin/python3

bail() { echo "Bail out! $*"; exit 1; }
[ -d "$here/node_modules/openid-client" ] ||
  bail "openid-client missing in tests/integration: run scripts/deps.sh test"
command -v jq >/dev/null || bail "jq missing: run scripts/deps.sh test"
[ -f "$fx/koder-inventory.sql" ] || bail "fixtures not found in $fx"

gw_init "$1"
gw_import "$fx/koder-inventory.sql" inv || bail "cannot import the inventory"
gw_start || bail "serve did not start on the imported store"

secrets=$fx/secrets.json
sj() { "$py" -c "import json,sys; d=json.load(open(sys.argv[1])); print($1)" "$secrets"; }
web=250000000080498240@koder_bull # Koder Bull Web: web, client_secret_basic, bcrypt cost 14
status=0
ISSUER="$GW_ISSUER" LOGIN="$(sj 'd["users"]["root"]["login"]')" \
  PASSWORD="$(sj 'd["users"]["root"]["password"]')" \
  OLD_PASSWORD="$(sj 'd["users"]["root"]["old_password_must_fail"]')" \
  SUB="$(sj 'd["users"]["root"]["id"]')" EMAIL=root@koder-id.id.koder.dev \
  WEB_ID="$web" WEB_SECRET="$(sj "d['clients']['$web']")" \
  WEB_REDIRECT=https://koder-bull-web.koder.dev/auth/callback \
  SPA_ID=250000000091973509 SPA_REDIRECT=https://ai-chat.koder.dev/callback \
  NATIVE_ID=250000000103328159@koder_ai \
  node "$here/rehearsal.mjs" >"$GW_TMP/rp.tap" || status=1
cat "$GW_TMP/rp.tap"
n=$(grep -cE '^(not )?ok ' "$GW_TMP/rp.tap")
check() { # description, then a command
  local d=$1
  shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; status=1; fi
}

# Client authentication of every OIDC app with a secret, with its own method. A bogus code
# after a good authentication is invalid_grant (400); a wrong secret is invalid_client (401).
token() { # client_id secret method -> "HTTP_STATUS ERROR"
  local out
  if [ "$3" = 0 ]; then
    local u p
    u=$(jq -rn --arg v "$1" '$v|@uri')
    p=$(jq -rn --arg v "$2" '$v|@uri')
    out=$(curl -s -w '\n%{http_code}' -u "$u:$p" -d grant_type=authorization_code \
      -d code=bogus-code -d redirect_uri=https://x.invalid/cb "$GW_ISSUER/oauth/v2/token")
  else
    out=$(curl -s -w '\n%{http_code}' --data-urlencode "client_id=$1" \
      --data-urlencode "client_secret=$2" -d grant_type=authorization_code -d code=bogus-code \
      -d redirect_uri=https://x.invalid/cb "$GW_ISSUER/oauth/v2/token")
  fi
  echo "$(tail -1 <<<"$out") $(head -n -1 <<<"$out" | jq -r .error)"
}
"$dump" --config "$GW_CONF" | jq -r 'select(.key|startswith("client/")) | .record |
  select(.kind == 0 and (.auth_method == 0 or .auth_method == 1)) |
  "\(.client_id) \(.auth_method)"' >"$GW_TMP/secret_clients"
good=0
bad=0
total=0
while read -r cid method; do
  secret=$(jq -r --arg c "$cid" '.clients[$c] | strings' "$secrets")
  [ -n "$secret" ] || { echo "# $cid: no secret in secrets.json"; bad=$((bad + 1)); continue; }
  total=$((total + 1))
  r1=$(token "$cid" "$secret" "$method")
  r2=$(token "$cid" "${secret}x" "$method")
  if [ "$r1" = "400 invalid_grant" ] && [ "$r2" = "401 invalid_client" ]; then
    good=$((good + 1))
  else
    bad=$((bad + 1))
    echo "# $cid (method $method): right secret -> $r1, wrong secret -> $r2"
  fi
done <"$GW_TMP/secret_clients"
check "every OIDC app secret in secrets.json ($good of $total) authenticates with its app's method; a wrong one does not" \
  test "$bad" = 0 -a "$good" -gt 40

jwks=$(curl -fsS "$GW_ISSUER/oauth/v2/keys")
check "the JWKS publishes v1's unexpired key 250000000044582279 beside v2's, not the expired one" \
  test "$(jq -r '[.keys[].kid] | (index("250000000044582279") != null) and (index("250000000048385657") == null) and (length >= 2)' <<<"$jwks")" = true

check "the server is still serving after the rehearsal" gw_alive
if [ $status -ne 0 ]; then
  echo "# server log:"
  gw_log_tail 40
fi
check "the server stops cleanly, no sanitizer report" gw_stop

# The real Zitadel v4 dump: its admin signs in with Zitadel's default password through the
# imported ruby-on-rails app (web, auth none + PKCE, dev mode).
rm -rf "$GW_TMP"
gw_init "$1"
check "fresh-instance.sql imports with exit 0" gw_import "$fx/fresh-instance.sql" fresh
gw_start || bail "serve did not start on the imported fresh instance"
ISSUER="$GW_ISSUER" LOGIN=zitadel-admin@zitadel.localhost PASSWORD='Password1!' \
  SUB=338293185506246659 EMAIL=zitadel-admin@zitadel.localhost \
  SPA_ID=338293453119029251 SPA_REDIRECT=http://127.0.0.1:5000/auth/callback \
  node "$here/rehearsal.mjs" >"$GW_TMP/rp2.tap" || status=1
sed -E "s/^(not )?ok [0-9]+ - /\1ok - fresh: /" "$GW_TMP/rp2.tap" | while IFS= read -r l; do
  case $l in
  ok\ -*) n=$((n + 1)); echo "ok $n ${l#ok }" ;;
  not\ ok\ -*) n=$((n + 1)); echo "not ok $n ${l#not ok }" ;;
  *) echo "$l" ;;
  esac
done
n=$((n + $(grep -cE '^(not )?ok ' "$GW_TMP/rp2.tap")))
if [ $status -ne 0 ]; then
  echo "# server log:"
  gw_log_tail 40
fi
check "the server stops cleanly, no sanitizer report" gw_stop
echo "1..$n"
exit $status
