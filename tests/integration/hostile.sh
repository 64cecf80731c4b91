#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The hostile suite (issue 3): curl against the real binary. Unregistered redirect_uri,
# loopback tricks, missing PKCE for a public client, code replay, a code presented by another
# client, wrong secret, wrong auth method, malformed and oversized requests, duplicate
# parameters: each must get the spec's error, and after each the server must still answer
# /healthz. Codes are obtained through the real login page with a cookie jar. TAP output.
# Usage: hostile.sh BINARY
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/gateway.sh"

bail() { echo "Bail out! $*"; exit 1; }
command -v jq >/dev/null || bail "jq missing: run scripts/deps.sh test"

gw_init "$1"
password="hostile $RANDOM pass"
gw_user eve "$password" || bail "user add failed"
# ivy's password is temporary: she must choose a new one at sign-in.
gw_user ivy "first $password" || bail "user add (ivy) failed"
printf 'temp %s\n' "$password" | "$GW_BIN" user password --config "$GW_CONF" --user ivy \
  --password-stdin --change-required >/dev/null || bail "user password --change-required"
gw_client WEB --name "Web" --type web --auth-method basic \
  --redirect-uri https://app.example/cb || bail "client add (web)"
gw_client OTHER --name "Other" --type web --auth-method basic \
  --redirect-uri https://other.example/cb || bail "client add (other)"
gw_client FRESH --name "Fresh" --type web --auth-method basic \
  --redirect-uri https://fresh.example/cb || bail "client add (fresh)"
gw_client VICTIM --name "Victim" --type web --auth-method basic --client-id "4242@koder_victim" \
  --redirect-uri https://victim.example/cb || bail "client add (victim)"
gw_client POST --name "Post" --type web --auth-method post \
  --redirect-uri https://post.example/cb || bail "client add (post)"
gw_client SPA --name "SPA" --type spa --redirect-uri https://spa.example/cb || bail "client add (spa)"
gw_client NATIVE --name "Native" --type native --redirect-uri http://127.0.0.1/cb ||
  bail "client add (native)"
gw_start || bail "serve did not start"
I=$GW_ISSUER
T=$GW_TMP

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
  n=$((n + 1)); failed=1; echo "not ok $n - $1"; shift
  for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done
}

# call DESC EXPECT_STATUS EXPECT_ERROR CURL_ARGS...: EXPECT_ERROR is the JSON `error`, or
# "-" for none checked. Afterwards the server must still answer /healthz.
call() {
  local desc=$1 want_status=$2 want_error=$3
  shift 3
  local status err
  status=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' --max-time 20 "$@")
  err=$(jq -r '.error // ""' <"$T/body" 2>/dev/null)
  if [ "$status" != "$want_status" ]; then
    not_ok "$desc" "status $status, want $want_status" "$(head -c 300 "$T/body")"
  elif [ "$want_error" != "-" ] && [ "$err" != "$want_error" ]; then
    not_ok "$desc" "error '$err', want '$want_error'" "$(head -c 300 "$T/body")"
  elif ! gw_alive; then
    not_ok "$desc" "the server stopped answering /healthz"
    gw_log_tail 30
    exit 1
  else
    ok "$desc"
  fi
}

header() { grep -i "^$1:" "$T/headers" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
urlenc() { jq -rn --arg v "$1" '$v|@uri'; }

# An authorization code for CLIENT and REDIRECT_URI through the real login page; extra
# authorize parameters may follow. Prints the code.
get_code() {
  local cid=$1 ru=$2 extra=${3:-} jar=$T/jar.$RANDOM loc page arid csrf cb
  loc=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" \
    "$I/oauth/v2/authorize?client_id=$(urlenc "$cid")&redirect_uri=$(urlenc "$ru")&response_type=code&scope=openid+profile+offline_access&state=s1&nonce=n1$extra")
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

TOKEN=$I/oauth/v2/token
FORM=(-H 'content-type: application/x-www-form-urlencoded')
WEB_RU=https://app.example/cb

# ---- authorize: redirect_uri checks happen before anything is redirected ----
authz() { # DESC CLIENT REDIRECT [extra]: expects an error page, no redirect
  local desc=$1 cid=$2 ru=$3 extra=${4:-}
  call "$desc" 400 - "$I/oauth/v2/authorize?client_id=$(urlenc "$cid")&redirect_uri=$(urlenc "$ru")&response_type=code&scope=openid&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256$extra"
  if [ -n "$(header location)" ]; then
    not_ok "$desc: no redirect" "location: $(header location)"
  fi
}
authz "authorize: unregistered redirect_uri gets an error page" "$WEB_ID" https://evil.example/cb
authz "authorize: registered URI plus a path suffix" "$WEB_ID" https://app.example/cb/../evil
authz "authorize: registered URI with another scheme" "$WEB_ID" http://app.example/cb
authz "authorize: registered URI with a query added" "$WEB_ID" "https://app.example/cb?x=1"
authz "authorize: userinfo trick moves the host" "$WEB_ID" "https://app.example@evil.example/cb"
authz "loopback: 127.0.0.1 as a subdomain of another host" "$NATIVE_ID" \
  "http://127.0.0.1.evil.example/cb"
authz "loopback: userinfo before another host" "$NATIVE_ID" "http://127.0.0.1@evil.example/cb"
authz "loopback: backslash trick" "$NATIVE_ID" 'http://127.0.0.1\@evil.example/cb'
authz "loopback: encoded dot" "$NATIVE_ID" "http://127.0.0.1%2eevil.example/cb"
authz "loopback: other path" "$NATIVE_ID" "http://127.0.0.1:4711/cb2"
authz "loopback: https instead of the registered http" "$NATIVE_ID" "https://127.0.0.1:4711/cb"
authz "authorize: duplicate redirect_uri parameter" "$WEB_ID" "$WEB_RU" \
  "&redirect_uri=$(urlenc https://evil.example/cb)"
call "loopback: any port on the registered loopback URI is accepted (control)" 302 - \
  "$I/oauth/v2/authorize?client_id=$NATIVE_ID&redirect_uri=$(urlenc http://127.0.0.1:4711/cb)&response_type=code&scope=openid&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
case "$(header location)" in
*/ui/login*) ok "loopback control: redirected to the login page" ;;
*) not_ok "loopback control: redirected to the login page" "location: $(header location)" ;;
esac

# ---- authorize: after the redirect_uri is valid, errors go back to it ----
call "authorize: a public client without PKCE" 302 - \
  "$I/oauth/v2/authorize?client_id=$SPA_ID&redirect_uri=$(urlenc https://spa.example/cb)&response_type=code&scope=openid&state=s7"
loc=$(header location)
case "$loc" in
https://spa.example/cb\?*error=invalid_request*state=s7*) ok "missing PKCE: invalid_request back to the client with its state" ;;
*) not_ok "missing PKCE: invalid_request back to the client with its state" "location: $loc" ;;
esac
call "authorize: code_challenge_method=plain" 302 - \
  "$I/oauth/v2/authorize?client_id=$SPA_ID&redirect_uri=$(urlenc https://spa.example/cb)&response_type=code&scope=openid&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain"
case "$(header location)" in
*error=invalid_request*) ok "plain PKCE: invalid_request" ;;
*) not_ok "plain PKCE: invalid_request" "location: $(header location)" ;;
esac

# ---- token endpoint: codes ----
code=$(get_code "$WEB_ID" "$WEB_RU")
[ -n "$code" ] || bail "could not get a code through the login page"
call "token: code presented by another client" 400 invalid_grant "${FORM[@]}" \
  -u "$OTHER_ID:$OTHER_SECRET" -d grant_type=authorization_code -d "code=$code" \
  --data-urlencode "redirect_uri=$WEB_RU" "$TOKEN"
call "token: another redirect_uri" 400 invalid_grant "${FORM[@]}" \
  -u "$WEB_ID:$WEB_SECRET" -d grant_type=authorization_code -d "code=$code" \
  --data-urlencode "redirect_uri=https://app.example/cb2" "$TOKEN"
call "token: a code_verifier for a code issued without a challenge" 400 invalid_grant \
  "${FORM[@]}" -u "$WEB_ID:$WEB_SECRET" -d grant_type=authorization_code -d "code=$code" \
  --data-urlencode "redirect_uri=$WEB_RU" \
  -d code_verifier=dBjftJeZ4CVP-mJ92K1rKy8ezMsYyA6kP7tMtR2BXZo "$TOKEN"
call "token: the rightful client redeems the code (control)" 200 - "${FORM[@]}" \
  -u "$WEB_ID:$WEB_SECRET" -d grant_type=authorization_code -d "code=$code" \
  --data-urlencode "redirect_uri=$WEB_RU" "$TOKEN"
at=$(jq -r .access_token <"$T/body")
[ "$(header cache-control)" = "no-store" ] && [ "$(header pragma)" = "no-cache" ] &&
  ok "token: Cache-Control no-store and Pragma no-cache" ||
  not_ok "token: Cache-Control no-store and Pragma no-cache" "$(cat "$T/headers")"
call "userinfo: the fresh access token works (control)" 200 - \
  -H "authorization: Bearer $at" "$I/oidc/v1/userinfo"
call "token: code replay" 400 invalid_grant "${FORM[@]}" -u "$WEB_ID:$WEB_SECRET" \
  -d grant_type=authorization_code -d "code=$code" --data-urlencode "redirect_uri=$WEB_RU" \
  "$TOKEN"
call "userinfo: the replayed code's access token is revoked" 401 invalid_token \
  -H "authorization: Bearer $at" "$I/oidc/v1/userinfo"
grep -qi '^www-authenticate: Bearer .*error="invalid_token"' "$T/headers" &&
  ok "userinfo: WWW-Authenticate Bearer error=invalid_token" ||
  not_ok "userinfo: WWW-Authenticate Bearer error=invalid_token" "$(cat "$T/headers")"

# Public client: PKCE at the token endpoint.
verifier=$(head -c 48 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | head -c 64)
challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=\n')
code=$(get_code "$SPA_ID" https://spa.example/cb "&code_challenge=$challenge&code_challenge_method=S256")
[ -n "$code" ] || bail "could not get an SPA code"
# The verifier with its last character changed (never to itself).
if [ "${verifier: -1}" = x ]; then wrong_verifier="${verifier%?}y"; else wrong_verifier="${verifier%?}x"; fi
call "token: public client without code_verifier" 400 invalid_grant "${FORM[@]}" \
  -d grant_type=authorization_code -d "code=$code" -d "client_id=$SPA_ID" \
  --data-urlencode "redirect_uri=https://spa.example/cb" "$TOKEN"
call "token: public client with a wrong code_verifier" 400 invalid_grant "${FORM[@]}" \
  -d grant_type=authorization_code -d "code=$code" -d "client_id=$SPA_ID" \
  -d "code_verifier=$wrong_verifier" --data-urlencode "redirect_uri=https://spa.example/cb" "$TOKEN"
call "token: public client sending a secret" 401 invalid_client "${FORM[@]}" \
  -d grant_type=authorization_code -d "code=$code" -d "client_id=$SPA_ID" -d client_secret=x \
  -d "code_verifier=$verifier" --data-urlencode "redirect_uri=https://spa.example/cb" "$TOKEN"
call "token: public client with the right verifier (control)" 200 - "${FORM[@]}" \
  -d grant_type=authorization_code -d "code=$code" -d "client_id=$SPA_ID" \
  -d "code_verifier=$verifier" --data-urlencode "redirect_uri=https://spa.example/cb" "$TOKEN"

# ---- token endpoint: client authentication ----
G=(-d grant_type=authorization_code -d code=x -d redirect_uri=https://app.example/cb)
call "token: wrong secret (Basic)" 401 invalid_client "${FORM[@]}" -u "$WEB_ID:wrong" \
  "${G[@]}" "$TOKEN"
grep -qi '^www-authenticate: Basic realm=' "$T/headers" &&
  ok "token: invalid_client after Basic carries WWW-Authenticate: Basic" ||
  not_ok "token: invalid_client after Basic carries WWW-Authenticate: Basic" "$(cat "$T/headers")"
call "token: unknown client" 401 invalid_client "${FORM[@]}" -u "nobody@proj:x" "${G[@]}" "$TOKEN"
call "token: wrong auth method (a post client using Basic)" 401 invalid_client "${FORM[@]}" \
  -u "$POST_ID:$POST_SECRET" "${G[@]}" "$TOKEN"
call "token: wrong auth method (a basic client using post)" 401 invalid_client "${FORM[@]}" \
  -d "client_id=$WEB_ID" -d "client_secret=$WEB_SECRET" "${G[@]}" "$TOKEN"
call "token: wrong auth method (a basic client sending no secret)" 401 invalid_client \
  "${FORM[@]}" -d "client_id=$WEB_ID" "${G[@]}" "$TOKEN"
call "token: two authentication methods at once" 400 invalid_request "${FORM[@]}" \
  -u "$WEB_ID:$WEB_SECRET" -d "client_secret=$WEB_SECRET" "${G[@]}" "$TOKEN"
call "token: no client authentication" 401 invalid_client "${FORM[@]}" "${G[@]}" "$TOKEN"
call "token: Basic with bad base64" 400 invalid_request "${FORM[@]}" \
  -H 'authorization: Basic %%%notbase64' "${G[@]}" "$TOKEN"
call "token: Basic without a colon" 400 invalid_request "${FORM[@]}" \
  -H "authorization: Basic $(printf 'nocolon' | base64)" "${G[@]}" "$TOKEN"
call "token: the post client with its secret (control, bad code)" 400 invalid_grant \
  "${FORM[@]}" -d "client_id=$POST_ID" -d "client_secret=$POST_SECRET" "${G[@]}" "$TOKEN"

# ---- token endpoint: failed client authentication is throttled per client ----
# The victim's secret verifies once (and is remembered); then someone fails on purpose for it
# and for a client whose secret has not been verified yet.
call "token: a v1 '@' client id, raw in Basic (control, bad code)" 400 invalid_grant \
  "${FORM[@]}" -u "$VICTIM_ID:$VICTIM_SECRET" "${G[@]}" "$TOKEN"
call "token: the same id form-encoded in Basic (control, bad code)" 400 invalid_grant \
  "${FORM[@]}" -u "4242%40koder_victim:$VICTIM_SECRET" "${G[@]}" "$TOKEN"
for i in $(seq 1 7); do
  curl -s -o /dev/null "${FORM[@]}" -u "$VICTIM_ID:wrong$i" "${G[@]}" "$TOKEN"
done
# Fail for the fresh client until it is blocked for a few seconds (5 free failures, then a
# doubling delay: about 3 s of trying), so the next check cannot race the block's end.
blocked=0
for i in $(seq 1 40); do
  msg=$(curl -s "${FORM[@]}" -u "$FRESH_ID:wrong$i" "${G[@]}" "$TOKEN" | jq -r .error_description)
  secs=$(sed -n 's/.*retry in \([0-9]*\) s.*/\1/p' <<<"$msg")
  if [ -n "$secs" ] && [ "$secs" -ge 3 ]; then blocked=1; break; fi
  sleep 0.25
done
[ $blocked = 1 ] && ok "token: repeated failures block the client with a growing delay" ||
  not_ok "token: repeated failures block the client with a growing delay" "$msg"
call "token: after repeated failures the right secret is refused too (throttled)" 401 \
  invalid_client "${FORM[@]}" -u "$FRESH_ID:$FRESH_SECRET" "${G[@]}" "$TOKEN"
grep -q 'too many failed attempts' "$T/body" && ok "token: the throttle says so" ||
  not_ok "token: the throttle says so" "$(cat "$T/body")"
call "token: a client verified moments ago is not locked out by others' failures" 400 \
  invalid_grant "${FORM[@]}" -u "$VICTIM_ID:$VICTIM_SECRET" "${G[@]}" "$TOKEN"
call "token: other clients are unaffected" 400 invalid_grant "${FORM[@]}" \
  -u "$WEB_ID:$WEB_SECRET" "${G[@]}" "$TOKEN"

# ---- token endpoint: malformed, oversized, duplicated ----
call "token: GET is 405" 405 invalid_request "$TOKEN"
[ "$(header allow)" = "POST" ] && ok "token: 405 names Allow: POST" ||
  not_ok "token: 405 names Allow: POST" "$(cat "$T/headers")"
call "token: JSON body" 400 invalid_request -u "$WEB_ID:$WEB_SECRET" \
  -H 'content-type: application/json' -d '{"grant_type":"authorization_code"}' "$TOKEN"
call "token: parameters in the query" 400 invalid_request "${FORM[@]}" \
  -u "$WEB_ID:$WEB_SECRET" "${G[@]}" "$TOKEN?client_secret=$WEB_SECRET"
call "token: duplicate grant_type" 400 invalid_request "${FORM[@]}" -u "$WEB_ID:$WEB_SECRET" \
  "${G[@]}" -d grant_type=authorization_code "$TOKEN"
call "token: duplicate client_id (one empty)" 400 invalid_request "${FORM[@]}" \
  -d "client_id=$SPA_ID" -d client_id= "${G[@]}" "$TOKEN"
call "token: missing grant_type" 400 invalid_request "${FORM[@]}" -u "$WEB_ID:$WEB_SECRET" \
  -d code=x "$TOKEN"
call "token: unsupported grant_type" 400 unsupported_grant_type "${FORM[@]}" \
  -u "$WEB_ID:$WEB_SECRET" -d grant_type=password -d username=eve -d password=x "$TOKEN"
call "token: bad percent-encoding" 400 invalid_request "${FORM[@]}" -u "$WEB_ID:$WEB_SECRET" \
  --data-binary 'grant_type=authorization_code&code=%zz' "$TOKEN"
call "token: NUL byte in a parameter" 400 invalid_request "${FORM[@]}" \
  -u "$WEB_ID:$WEB_SECRET" --data-binary 'grant_type=authorization_code&code=a%00b' "$TOKEN"
call "token: missing code" 400 invalid_request "${FORM[@]}" -u "$WEB_ID:$WEB_SECRET" \
  -d grant_type=authorization_code --data-urlencode "redirect_uri=$WEB_RU" "$TOKEN"
call "token: unknown code" 400 invalid_grant "${FORM[@]}" -u "$WEB_ID:$WEB_SECRET" \
  "${G[@]}" "$TOKEN"
head -c 20000 /dev/zero | tr '\0' 'a' >"$T/long"
call "token: an overlong parameter value" 400 invalid_request "${FORM[@]}" \
  -u "$WEB_ID:$WEB_SECRET" --data-binary "grant_type=authorization_code&code=$(cat "$T/long")" \
  "$TOKEN"
many=$(for i in $(seq 1 80); do printf 'p%d=1&' "$i"; done)
call "token: too many parameters" 400 invalid_request "${FORM[@]}" -u "$WEB_ID:$WEB_SECRET" \
  --data-binary "${many}grant_type=authorization_code" "$TOKEN"
head -c 200000 /dev/zero | tr '\0' 'a' >"$T/huge"
# h2o refuses a body over max_body before any handler runs; the answer is still our JSON error
# with our headers, and it is access-logged like any other request.
for ep in oauth/v2/token oauth/v2/introspect oauth/v2/revoke oidc/v1/userinfo; do
  call "$ep: a body over the server's cap is 413 invalid_request" 413 invalid_request \
    "${FORM[@]}" -u "$WEB_ID:$WEB_SECRET" --data-binary "@$T/huge" "$I/$ep"
  [ "$(header content-type)" = application/json ] && [ "$(header cache-control)" = no-store ] &&
    [ "$(header x-content-type-options)" = nosniff ] &&
    jq -e '.error_description == "request body too large"' "$T/body" >/dev/null &&
    ok "$ep: the 413 is JSON, no-store, nosniff" ||
    not_ok "$ep: the 413 is JSON, no-store, nosniff" "$(cat "$T/headers")"
done
call "token: a chunked body over the cap is 413 invalid_request" 413 invalid_request \
  "${FORM[@]}" -H 'transfer-encoding: chunked' -u "$WEB_ID:$WEB_SECRET" \
  --data-binary "@$T/huge" "$TOKEN"
call "token: HEAD with a huge Content-Length is 413, no body" 413 - -I \
  -H 'content-length: 100000000' "$TOKEN"
sleep 0.2 # the access line is written when h2o disposes of the request
for ep in oauth/v2/token oauth/v2/introspect oauth/v2/revoke oidc/v1/userinfo; do
  grep -q "access: POST /$ep 413 " "$T/serve.log" && ok "$ep: the 413 is in the access log" ||
    not_ok "$ep: the 413 is in the access log" "$(grep access: "$T/serve.log" | tail -5)"
done
head -c 70000 /dev/zero | tr '\0' 'a' >"$T/hdr"
status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "${FORM[@]}" \
  -H "x-filler: $(cat "$T/hdr")" -u "$WEB_ID:$WEB_SECRET" "${G[@]}" "$TOKEN")
if [ "$status" -ge 400 ] 2>/dev/null || [ "$status" = 000 ]; then
  if gw_alive; then ok "token: an oversized header is refused ($status) and the server serves on"
  else not_ok "token: an oversized header is refused and the server serves on" "dead"; fi
else
  not_ok "token: an oversized header is refused" "status $status"
fi
# A second Authorization header must not be silently ignored (RFC 7230 3.2.2: not a list).
call "token: two Authorization headers, the right one first" 400 invalid_request "${FORM[@]}" \
  -H "authorization: Basic $(printf '%s:%s' "$WEB_ID" "$WEB_SECRET" | base64 -w0)" \
  -H "authorization: Basic $(printf 'x:y' | base64)" "${G[@]}" "$TOKEN"
call "token: two Authorization headers, the right one last" 400 invalid_request "${FORM[@]}" \
  -H "authorization: Basic $(printf 'x:y' | base64)" \
  -H "authorization: Basic $(printf '%s:%s' "$WEB_ID" "$WEB_SECRET" | base64 -w0)" "${G[@]}" "$TOKEN"
big_auth="Basic $(head -c 6000 /dev/zero | tr '\0' 'A')"
call "token: an overlong Basic header" 400 invalid_request "${FORM[@]}" \
  -H "authorization: $big_auth" "${G[@]}" "$TOKEN"

# ---- userinfo ----
call "userinfo: no token" 401 - "$I/oidc/v1/userinfo"
grep -qi '^www-authenticate: Bearer realm=' "$T/headers" &&
  ok "userinfo: no token gets the Bearer challenge" ||
  not_ok "userinfo: no token gets the Bearer challenge" "$(cat "$T/headers")"
call "userinfo: garbage token" 401 invalid_token -H 'authorization: Bearer garbage' \
  "$I/oidc/v1/userinfo"
call "userinfo: forged JWT (alg none)" 401 invalid_token \
  -H "authorization: Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0." "$I/oidc/v1/userinfo"
call "userinfo: token in the query" 400 invalid_request "$I/oidc/v1/userinfo?access_token=x"
call "userinfo: token in header and body" 400 invalid_request -H 'authorization: Bearer x' \
  "${FORM[@]}" -d access_token=x "$I/oidc/v1/userinfo"
call "userinfo: two Authorization headers" 400 invalid_request -H 'authorization: Bearer x' \
  -H 'authorization: Bearer y' "$I/oidc/v1/userinfo"
call "userinfo: another scheme" 400 invalid_request -u "a:b" "$I/oidc/v1/userinfo"
call "userinfo: PUT is 405" 405 invalid_request -X PUT "$I/oidc/v1/userinfo"

# ---- login: the password change step ----
jar=$T/jar.ivy
loc=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" \
  "$I/oauth/v2/authorize?client_id=$(urlenc "$WEB_ID")&redirect_uri=$(urlenc "$WEB_RU")&response_type=code&scope=openid&state=iv")
page=$(curl -s -c "$jar" -b "$jar" "$loc")
field() { grep -o "name=\"$1\" value=\"[^\"]*\"" <<<"$page" | sed 's/.*value="//;s/"$//'; }
arid=$(field authRequestID)
call "login: ivy's temporary password gives the change form, no redirect" 200 - \
  -c "$jar" -b "$jar" --data-urlencode "authRequestID=$arid" --data-urlencode "csrf=$(field csrf)" \
  --data-urlencode loginName=ivy --data-urlencode "password=temp $password" "$I/ui/login/login"
page=$(cat "$T/body")
grep -q 'name="newPassword"' "$T/body" && [ -z "$(header location)" ] &&
  ! grep -qi '^set-cookie: koder_session' "$T/headers" &&
  ok "login: ...the change form, no location, no session" ||
  not_ok "login: ...the change form, no location, no session" "$(head -c 300 "$T/body" | tr '\n' ' ')"
change() { # DESC STATUS CURL_ARGS...: posts the change form; never a redirect
  local desc=$1 st=$2
  shift 2
  call "login: $desc" "$st" - -c "$jar" -b "$jar" --data-urlencode "authRequestID=$arid" "$@" \
    "$I/ui/login/login"
  if [ -n "$(header location)" ]; then not_ok "login: $desc: no redirect" "$(header location)"; fi
  page=$(cat "$T/body")
}
change "new password without the CSRF token: 403" 403 \
  --data-urlencode "newPassword=a good new one" --data-urlencode "confirmPassword=a good new one"
call "login: new password from another browser (the right token, no cookie): 403" 403 - \
  --data-urlencode "authRequestID=$arid" --data-urlencode "csrf=$(field csrf)" \
  --data-urlencode "newPassword=a good new one" --data-urlencode "confirmPassword=a good new one" \
  "$I/ui/login/login"
[ -z "$(header location)" ] && ok "login: ...no redirect" || not_ok "login: ...no redirect" "$(header location)"
# that other browser voided the step: the password again
page=$(curl -s -c "$jar" -b "$jar" "$loc")
grep -q 'name="password"' <<<"$page" && ok "login: ...and the step must be earned again" ||
  not_ok "login: ...and the step must be earned again" "$(head -c 300 <<<"$page" | tr '\n' ' ')"
change "the password again" 200 --data-urlencode "csrf=$(field csrf)" \
  --data-urlencode loginName=ivy --data-urlencode "password=temp $password"
change "mismatched new passwords: 400" 400 --data-urlencode "csrf=$(field csrf)" \
  --data-urlencode "newPassword=a good new one" --data-urlencode "confirmPassword=a good new 1"
change "a too short new password: 400" 400 --data-urlencode "csrf=$(field csrf)" \
  --data-urlencode "newPassword=short" --data-urlencode "confirmPassword=short"
grep -q 'at least 8 characters' <<<"$page" && ok "login: ...saying why" ||
  not_ok "login: ...saying why" "$(head -c 300 <<<"$page" | tr '\n' ' ')"
call "login: no session yet, prompt=none gets no code" 302 - -b "$jar" \
  "$I/oauth/v2/authorize?client_id=$(urlenc "$WEB_ID")&redirect_uri=$(urlenc "$WEB_RU")&response_type=code&scope=openid&prompt=none"
case "$(header location)" in
*error=login_required*) ok "login: ...login_required" ;;
*) not_ok "login: ...login_required" "$(header location)" ;;
esac
call "login: a good new password: redirected with a code" 303 - -c "$jar" -b "$jar" \
  --data-urlencode "authRequestID=$arid" --data-urlencode "csrf=$(field csrf)" \
  --data-urlencode "newPassword=a good new one" --data-urlencode "confirmPassword=a good new one" \
  "$I/ui/login/login"
case "$(header location)" in
"$WEB_RU?code="*"&state=iv&"*) ok "login: ...code and state" ;;
*) not_ok "login: ...code and state" "$(header location)" ;;
esac

# ---- routing: h2o decodes %2F and dot segments before we route ----
# A request reaches the endpoint its decoded path names (which does all the checking), or is
# unknown: never another endpoint, never a crash.
route() { # DESC STATUS EXPECT_ERROR PATH [CURL_ARGS...]
  local desc=$1 st=$2 er=$3 path=$4
  shift 4
  call "route $desc" "$st" "$er" --path-as-is "$@" "$I$path"
}
route "/oauth%2Fv2/token is the token endpoint" 400 unsupported_grant_type /oauth%2Fv2/token \
  "${FORM[@]}" -d grant_type=nope
route "/oauth/v2%2ftoken is the token endpoint" 400 unsupported_grant_type /oauth/v2%2ftoken \
  "${FORM[@]}" -d grant_type=nope
route "/oauth%2Fv2/token keeps the token endpoint's method rule" 405 invalid_request \
  /oauth%2Fv2/token
route "/oauth%2Fv2/token keeps client authentication" 401 invalid_client /oauth%2Fv2/token \
  "${FORM[@]}" -u "$WEB_ID:wrong" "${G[@]}"
route "/ui/login%2F..%2F is unknown" 404 not_found '/ui/login%2F..%2F'
route "/ui/login%2F..%2F..%2Foauth%2Fv2%2Ftoken resolves to the token endpoint" 400 \
  unsupported_grant_type '/ui/login%2F..%2F..%2Foauth%2Fv2%2Ftoken' "${FORM[@]}" -d grant_type=nope
route "/ui/login/login%2F..%2F..%2Foauth%2Fv2%2Ftoken is /ui/oauth/v2/token: unknown" 404 \
  not_found '/ui/login/login%2F..%2F..%2Foauth%2Fv2%2Ftoken' "${FORM[@]}" -d grant_type=nope
route "/ui/login/%2E%2E/%2E%2E/oauth/v2/token resolves to the token endpoint" 400 \
  unsupported_grant_type '/ui/login/%2E%2E/%2E%2E/oauth/v2/token' "${FORM[@]}" -d grant_type=nope
route "/ui/login%5C..%5Coauth/v2/token (backslashes) is unknown" 404 not_found \
  '/ui/login%5C..%5Coauth/v2/token' "${FORM[@]}" -d grant_type=nope
route "/%2e%2e/%2e%2e/healthz is clamped at the root" 200 - '/%2e%2e/%2e%2e/healthz'
route "/oauth/v2/token%2F is unknown" 404 not_found /oauth/v2/token%2F "${FORM[@]}" \
  -d grant_type=nope
route "/oauth/v2//token is unknown" 404 not_found /oauth/v2//token "${FORM[@]}" -d grant_type=nope
route "/oauth/v2/token%00x (a NUL) is unknown, not the token endpoint" 404 not_found \
  /oauth/v2/token%00x "${FORM[@]}" -d grant_type=nope
route "/oauth/v2/token%00 is unknown" 404 not_found /oauth/v2/token%00 "${FORM[@]}" \
  -d grant_type=nope
route "/ui/login/login%0A is unknown" 404 not_found /ui/login/login%0A
route "/oidc/v1/userinfo%3F (an encoded ?) is unknown" 404 not_found '/oidc/v1/userinfo%3Fx=1'
route "/.well-known%2Fopenid-configuration is discovery" 200 - '/.well-known%2Fopenid-configuration'
jq -e '.token_endpoint' "$T/body" >/dev/null && ok "route: ...with the discovery document" ||
  not_ok "route: ...with the discovery document" "$(head -c 200 "$T/body")"
status=$(curl -s -o "$T/body" -w '%{http_code}' --path-as-is "$I/ui/login%2Flogin?authRequestID=x")
[ "$status" = 400 ] && grep -q expired "$T/body" && ok "route: /ui/login%2Flogin is the login page" ||
  not_ok "route: /ui/login%2Flogin is the login page" "status $status"

if gw_stop; then ok "the server stops cleanly, no sanitizer report"
else not_ok "the server stops cleanly, no sanitizer report"; fi
echo "1..$n"
if [ $failed -ne 0 ]; then
  echo "# server log:"
  gw_log_tail 60
fi
exit $failed
