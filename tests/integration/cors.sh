#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CORS against the real binary with curl (issue 5): token, userinfo, introspect, revoke, JWKS
# and discovery answer registered origins (redirect URIs' and additional ones), errors and
# 304s included, and preflights; hostile and unregistered origins get nothing but Vary;
# authorize, the login page and end_session never answer CORS; a client added by the CLI
# while serve runs is honoured (periodically, and at once on SIGHUP). TAP.
# Usage: cors.sh BINARY
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/gateway.sh"

command -v jq >/dev/null || tap_bail "jq missing: run scripts/deps.sh test"

gw_init "$1"
gw_client WEB --name "Web" --type web --auth-method basic \
  --redirect-uri https://app.example/cb --redirect-uri https://app.example/other \
  --origin https://spa.example:8443 || tap_bail "client add (web)"
gw_client SPA --name "Dev SPA" --type spa --redirect-uri http://localhost:3000/cb ||
  tap_bail "client add (spa)"
gw_client NATIVE --name "Native" --type native --redirect-uri http://127.0.0.1/cb \
  --redirect-uri com.example.app:/cb || tap_bail "client add (native)"
# client add --origin: stored as a browser sends it; what has no web origin is a usage error.
tap_check "client show lists the additional origin" \
  "$("$GW_BIN" client show --config "$GW_CONF" "$WEB_ID" --json | jq -c .additional_origins)" \
  '["https://spa.example:8443"]'
gw_client NORM --name "Norm" --type spa --redirect-uri https://norm.example/cb \
  --origin HTTPS://Other.Example:443/some/path || tap_bail "client add (norm)"
tap_check "--origin is stored normalized (lower case, no default port, no path)" \
  "$("$GW_BIN" client show --config "$GW_CONF" "$NORM_ID" --json | jq -c .additional_origins)" \
  '["https://other.example"]'
for bad in com.example.app:/cb 'https://*.example.com' https://a@b.example null ftp://files.example; do
  "$GW_BIN" client add --config "$GW_CONF" --name Bad --type spa --redirect-uri https://x.example/cb \
    --origin "$bad" >/dev/null 2>&1
  tap_check "--origin '$bad' refused as a usage error" "$?" 2
done
gw_start || tap_bail "serve did not start"
I=$GW_ISSUER

H=$GW_TMP/headers
# req ARGS...: the status; the response headers land in $H (lower-cased names, no CR).
req() {
  local code
  code=$(curl -s -o "$GW_TMP/body" -D "$H.raw" -w '%{http_code}' "$@")
  tr -d '\r' <"$H.raw" | sed 's/^\([^:]*\):/\L\1:/' >"$H"
  echo "$code"
}
# hdr NAME: every value of response header NAME, comma-joined.
hdr() { sed -n "s/^$1: //p" "$H" | paste -sd, -; }
no_cors() { ! grep -q '^access-control-' "$H"; }
basic=$(printf '%s:%s' "$WEB_ID" "$WEB_SECRET" | base64 -w0)

# endpoint table: name, method, path, extra curl args giving a real answer
declare -a EP=(
  "token|POST|/oauth/v2/token|--data grant_type=authorization_code&code=nope&redirect_uri=https://app.example/cb"
  "userinfo|GET|/oidc/v1/userinfo|"
  "introspect|POST|/oauth/v2/introspect|-H Authorization:Basic_$basic --data token=nope"
  "revoke|POST|/oauth/v2/revoke|-H Authorization:Basic_$basic --data token=nope"
  "discovery|GET|/.well-known/openid-configuration|"
  "jwks|GET|/oauth/v2/keys|"
)
args_of() { # the extra args, with the Basic placeholder's space restored
  local a=$1
  [ -n "$a" ] || return 0
  for w in $a; do printf '%s\n' "${w/Basic_/Basic }"; done
}

allowed=(https://app.example https://spa.example:8443 http://localhost:3000 http://127.0.0.1
  https://other.example)
hostile=(https://evil.example https://app.example.evil.com https://app.example@evil.com
  https://app.example.com HTTPS://APP.EXAMPLE https://App.example https://app.example/
  https://app.example:443 http://app.example https://spa.example https://spa.example:8444
  http://localhost:3001 http://localhost http://127.0.0.1:5555 null '*' '' 'com.example.app:'
  "https://$(head -c 9000 /dev/zero | tr '\0' a).example"
  "$(printf 'https://b\xc3\xbccher.example')")

for row in "${EP[@]}"; do
  IFS='|' read -r name method path extra <<<"$row"
  mapfile -t xa < <(args_of "$extra")
  url=$I$path
  for o in "${allowed[@]}"; do
    st=$(req -X "$method" -H "Origin: $o" "${xa[@]}" "$url")
    tap_check "$name ($st) from $o: Access-Control-Allow-Origin echoes it" "$(hdr access-control-allow-origin)" "$o"
  done
  tap_check "$name: Vary: Origin" "$(hdr vary)" "origin"
  tap_check "$name: no credentials" "$(hdr access-control-allow-credentials)" ""
  for o in "${hostile[@]}"; do
    st=$(req -X "$method" -H "Origin: $o" "${xa[@]}" "$url")
    if no_cors && [ "$(hdr vary)" = origin ]; then tap_ok "$name ($st) from '${o:0:40}': no CORS, Vary: Origin"
    else tap_not_ok "$name ($st) from '${o:0:40}': CORS headers $(grep '^access-control-' "$H" | head -c 200)"; fi
  done
  st=$(req -X "$method" "${xa[@]}" "$url")
  if no_cors && [ "$(hdr vary)" = origin ]; then tap_ok "$name ($st) without Origin: no CORS, Vary: Origin"
  else tap_not_ok "$name ($st) without Origin"; fi
  st=$(req -X "$method" -H "Origin: https://app.example" -H "Origin: https://evil.example" "${xa[@]}" "$url")
  if no_cors; then tap_ok "$name: two Origin headers get no CORS"; else tap_not_ok "$name: two Origin headers"; fi

  # preflight
  st=$(req -X OPTIONS -H "Origin: https://spa.example:8443" -H "Access-Control-Request-Method: $method" \
    -H "Access-Control-Request-Headers: authorization, content-type" "$url")
  tap_check "$name: preflight from an allowed origin is 204" "$st" 204
  tap_check "$name: preflight allows the origin" "$(hdr access-control-allow-origin)" https://spa.example:8443
  case "$(hdr access-control-allow-methods)" in *"$method"*) tap_ok "$name: preflight allows $method" ;;
    *) tap_not_ok "$name: preflight methods '$(hdr access-control-allow-methods)'" ;; esac
  tap_check "$name: preflight max-age" "$(hdr access-control-max-age)" 600
  tap_check "$name: preflight Vary" "$(hdr vary)" origin
  tap_check "$name: preflight without credentials" "$(hdr access-control-allow-credentials)" ""
  if [ "$name" = discovery ] || [ "$name" = jwks ]; then
    tap_check "$name: preflight allows no request headers (none needed)" "$(hdr access-control-allow-headers)" ""
  else
    tap_check "$name: preflight allows Authorization and Content-Type" \
      "$(hdr access-control-allow-headers)" "Authorization, Content-Type"
  fi
  st=$(req -X OPTIONS -H "Origin: https://evil.example" -H "Access-Control-Request-Method: $method" "$url")
  if [ "$st" = 204 ] && no_cors; then tap_ok "$name: preflight from evil.example: 204 without CORS"
  else tap_not_ok "$name: preflight from evil.example ($st)"; fi
  st=$(req -X OPTIONS -H "Origin: null" -H "Access-Control-Request-Method: $method" "$url")
  if no_cors; then tap_ok "$name: preflight from null: no CORS"; else tap_not_ok "$name: preflight from null"; fi
done

# What the answers were, so the checks above covered errors and successes alike.
st=$(req -X POST -H "Origin: https://app.example" -H "Authorization: Basic $basic" \
  --data 'grant_type=authorization_code&code=nope&redirect_uri=https://app.example/cb' "$I/oauth/v2/token")
tap_check "token: an invalid_grant (400) is readable cross-origin" \
  "$st $(jq -r .error "$GW_TMP/body") $(hdr access-control-allow-origin)" "400 invalid_grant https://app.example"
st=$(req -X POST -H "Origin: https://app.example" -H "Authorization: Basic d3Jvbmc6d3Jvbmc=" \
  --data 'grant_type=refresh_token&refresh_token=x' "$I/oauth/v2/token")
tap_check "token: invalid_client (401) carries CORS" "$st $(hdr access-control-allow-origin)" "401 https://app.example"
st=$(req -H "Origin: https://app.example" -H "Authorization: Bearer not-a-token" "$I/oidc/v1/userinfo")
tap_check "userinfo: 401 with CORS" "$st $(hdr access-control-allow-origin)" "401 https://app.example"
case "$(hdr www-authenticate)" in Bearer*) tap_ok "userinfo: the 401 has a WWW-Authenticate challenge" ;;
  *) tap_not_ok "userinfo: no challenge" ;; esac
tap_check "userinfo: WWW-Authenticate is exposed to the script" \
  "$(hdr access-control-expose-headers)" WWW-Authenticate
st=$(req -X POST -H "Origin: https://app.example" -H "Authorization: Basic $basic" --data token=nope "$I/oauth/v2/introspect")
tap_check "introspect: a 200 {active:false} with CORS" \
  "$st $(jq -c .active "$GW_TMP/body") $(hdr access-control-allow-origin)" "200 false https://app.example"
st=$(req -X POST -H "Origin: https://app.example" -H "Authorization: Basic $basic" --data token=nope "$I/oauth/v2/revoke")
tap_check "revoke: a 200 with CORS" "$st $(hdr access-control-allow-origin)" "200 https://app.example"
st=$(req -X DELETE -H "Origin: https://app.example" "$I/oauth/v2/keys")
tap_check "jwks: a 405 made on the loop thread carries CORS" "$st $(hdr access-control-allow-origin)" "405 https://app.example"
st=$(req -H "Origin: https://app.example" "$I/.well-known/openid-configuration")
etag=$(hdr etag)
st=$(req -H "Origin: https://app.example" -H "If-None-Match: $etag" "$I/.well-known/openid-configuration")
tap_check "discovery: a 304 revalidation carries CORS and Vary" \
  "$st $(hdr access-control-allow-origin) $(hdr vary)" "304 https://app.example origin"
tap_check "discovery: still publicly cacheable" "$(hdr cache-control)" "public, max-age=300"

# Never CORS: authorize (a navigation), the login page, end_session; with an allowed Origin,
# as a preflight and as the request itself.
q="client_id=$(jq -rn --arg v "$WEB_ID" '$v|@uri')&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=openid"
for p in "/oauth/v2/authorize?$q" /ui/login /ui/login/login /oidc/v1/end_session /ui/login/logout/done; do
  for m in GET POST; do
    st=$(req -X "$m" -H "Origin: https://app.example" "$I$p")
    if no_cors && [ "$(hdr vary)" = "" ]; then tap_ok "${p%%\?*} $m ($st): no CORS"
    else tap_not_ok "${p%%\?*} $m ($st): $(grep -E '^(access-control-|vary)' "$H" | head -c 200)"; fi
  done
  st=$(req -X OPTIONS -H "Origin: https://app.example" -H "Access-Control-Request-Method: POST" "$I$p")
  if no_cors; then tap_ok "${p%%\?*} preflight ($st): no CORS"; else tap_not_ok "${p%%\?*} preflight ($st)"; fi
done
st=$(req -X OPTIONS -H "Origin: https://app.example" -H "Access-Control-Request-Method: GET" "$I/healthz")
if no_cors; then tap_ok "/healthz: no CORS"; else tap_not_ok "/healthz answers CORS"; fi

# A client added by the CLI while serve runs: honoured by the periodic reload (every 10 s)
# without any signal, and at once after SIGHUP. Polled with a generous deadline; what is
# checked is the outcome, not the timing.
allowed_now() { req -H "Origin: $1" "$I/oauth/v2/keys" >/dev/null; [ "$(hdr access-control-allow-origin)" = "$1" ]; }
wait_allowed() {
  for _ in $(seq 1 "$2"); do allowed_now "$1" && return 0; sleep 0.5; done
  return 1
}
allowed_now https://late.example && tap_not_ok "late.example allowed before it exists" ||
  tap_ok "late.example not allowed before its client exists"
gw_client LATE --name "Late" --type spa --redirect-uri https://late.example/cb || tap_bail "client add (late)"
if wait_allowed https://late.example 60; then tap_ok "a client added while serving is honoured by the periodic reload"
else tap_not_ok "late.example still refused 30 s after client add"; fi
gw_client HUP --name "Hup" --type spa --redirect-uri https://hup.example/cb || tap_bail "client add (hup)"
kill -HUP "$GW_PID"
if wait_allowed https://hup.example 10; then tap_ok "after SIGHUP a new client's origin is allowed"
else tap_not_ok "hup.example refused 5 s after SIGHUP"; fi

gw_alive && tap_ok "server still answers" || tap_not_ok "server still answers"
gw_stop && tap_ok "server stopped cleanly (no sanitizer report)" || { tap_not_ok "server stop"; gw_log_tail; }
tap_end
