#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# /oidc/v1/end_session against the real binary with curl (issue 5): discovery names it; a
# registered post_logout_redirect_uri gets the browser back with its state; unregistered ones
# (another host, a longer path, another client's) and forged id_token_hints are refused with a
# page and no redirect; without a redirect the browser lands on v1's logged-out page. TAP.
# Usage: end_session.sh BINARY
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/gateway.sh"

bail() { echo "Bail out! $*"; exit 1; }
command -v jq >/dev/null || bail "jq missing: run scripts/deps.sh test"

gw_init "$1"
gw_client WEB --name "Web" --type web --auth-method basic \
  --redirect-uri https://app.example/cb --post-logout-uri https://app.example/bye ||
  bail "client add (web)"
gw_client OTHER --name "Other" --type web --auth-method basic \
  --redirect-uri https://other.example/cb --post-logout-uri https://other.example/bye ||
  bail "client add (other)"
gw_start || bail "serve did not start"
I=$GW_ISSUER

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', want '$3')"; fi; }

# status and Location of one request
req() { curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$@"; }
enc() { jq -rn --arg v "$1" '$v|@uri'; }

check "discovery lists end_session_endpoint" \
  "$(curl -s "$I/.well-known/openid-configuration" | jq -r .end_session_endpoint)" \
  "$I/oidc/v1/end_session"
web=$(enc "$WEB_ID")
other=$(enc "$OTHER_ID")
check "registered URI: back to the client with state" \
  "$(req "$I/oidc/v1/end_session?client_id=$web&post_logout_redirect_uri=$(enc https://app.example/bye)&state=xyz")" \
  "302 https://app.example/bye?state=xyz"
check "POST form works too" \
  "$(req -X POST --data "client_id=$web&post_logout_redirect_uri=$(enc https://app.example/bye)" "$I/oidc/v1/end_session")" \
  "302 https://app.example/bye"
for u in https://evil.example/bye https://app.example/bye/x https://app.example/by https://other.example/bye; do
  check "unregistered URI $u refused" \
    "$(req "$I/oidc/v1/end_session?client_id=$web&post_logout_redirect_uri=$(enc "$u")")" "400 "
done
check "a redirect without a client refused" \
  "$(req "$I/oidc/v1/end_session?post_logout_redirect_uri=$(enc https://app.example/bye)")" "400 "
# A forged hint: a well-formed RS256 JWT under a kid we publish, signed by a key we never had.
kid=$(curl -s "$I/oauth/v2/keys" | jq -r '.keys[0].kid')
b64() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
h=$(printf '{"alg":"RS256","kid":"%s","typ":"JWT"}' "$kid" | b64)
p=$(printf '{"iss":"%s","sub":"1","aud":"%s","azp":"%s","exp":%d}' "$I" "$WEB_ID" "$WEB_ID" \
  $(($(date +%s) + 600)) | b64)
key=$(mktemp -p "$GW_TMP")
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$key" 2>/dev/null
s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -sign "$key" | b64)
check "forged id_token_hint refused" \
  "$(req "$I/oidc/v1/end_session?id_token_hint=$h.$p.$s&post_logout_redirect_uri=$(enc https://app.example/bye)")" \
  "400 "
check "no redirect: v1's logged-out page" "$(req "$I/oidc/v1/end_session")" \
  "302 $I/ui/login/logout/done"
check "the logged-out page answers" "$(req "$I/ui/login/logout/done")" "200 "
gw_alive && ok "server still answers" || not_ok "server still answers"
echo "1..$n"
exit $failed
