# SPDX-License-Identifier: Apache-2.0
# A sign-in with curl, as a relying party and a browser would do it, for the package and
# operations tests (source this file). Needs curl, jq, openssl.
#
#   curl_signin ISSUER CLIENT_ID SECRET LOGIN PASSWORD TAG JAR DIR
#
# Authorization request (code, PKCE S256, state and nonce from TAG) for a web client with
# redirect URI http://127.0.0.1/cb, the login form with a wrong password first (must be 401),
# then the right one, the code exchange with client_secret_basic, the ID token's iss, nonce and
# aud, and userinfo with the access token. Returns 0 and sets signin_sub, or 1 and sets
# signin_error. Leaves token.json and userinfo.json in DIR.

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
urlenc() { jq -rn --arg v "$1" '$v|@uri'; }

signin_fail() { signin_error=$*; return 1; }

# Starts the authorization request and opens the login form: sets signin_arid, signin_csrf
# and signin_verifier.
curl_signin_form() { # ISSUER CLIENT_ID TAG JAR
  local issuer=$1 client_id=$2 tag=$3 jar=$4 challenge loc page
  signin_verifier=$(head -c 48 /dev/urandom | b64url)
  challenge=$(printf '%s' "$signin_verifier" | openssl dgst -sha256 -binary | b64url)
  loc=$(curl -sS -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" \
    "$issuer/oauth/v2/authorize?client_id=$(urlenc "$client_id")&redirect_uri=$(urlenc http://127.0.0.1/cb)&response_type=code&scope=openid%20email%20profile&state=st-$tag&nonce=nc-$tag&code_challenge=$challenge&code_challenge_method=S256")
  case "$loc" in "$issuer"/ui/login/*) ;; *) signin_fail "authorize did not send to the login page: '$loc'"; return 1 ;; esac
  page=$(curl -fsS -c "$jar" -b "$jar" "$loc") || { signin_fail "no login page at $loc"; return 1; }
  signin_arid=$(sed -n 's/.*name="authRequestID" value="\([^"]*\)".*/\1/p' <<<"$page")
  signin_csrf=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' <<<"$page")
  [ -n "$signin_arid" ] && [ -n "$signin_csrf" ] || { signin_fail "login page without authRequestID/csrf"; return 1; }
}

curl_signin() { # ISSUER CLIENT_ID SECRET LOGIN PASSWORD TAG JAR DIR
  local issuer=$1 client_id=$2 secret=$3 login=$4 password=$5 tag=$6 jar=$7 dir=$8
  local page loc code status idt at claims
  rm -f "$jar"
  curl_signin_form "$issuer" "$client_id" "$tag" "$jar" || return 1
  page=$(curl -sS -c "$jar" -b "$jar" -w '\n%{http_code}' "$issuer/ui/login/login" \
    --data-urlencode "authRequestID=$signin_arid" --data-urlencode "csrf=$signin_csrf" \
    --data-urlencode "loginName=$login" --data-urlencode "password=wrong $password")
  [ "$(tail -n1 <<<"$page")" = 401 ] || { signin_fail "a wrong password got $(tail -n1 <<<"$page")"; return 1; }
  signin_csrf=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' <<<"$page")
  loc=$(curl -sS -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" "$issuer/ui/login/login" \
    --data-urlencode "authRequestID=$signin_arid" --data-urlencode "csrf=$signin_csrf" \
    --data-urlencode "loginName=$login" --data-urlencode "password=$password")
  case "$loc" in http://127.0.0.1/cb\?*) ;; *) signin_fail "login did not redirect to the client: '$loc'"; return 1 ;; esac
  grep -q "state=st-$tag" <<<"$loc" || { signin_fail "state lost: $loc"; return 1; }
  code=$(sed -n 's/.*[?&]code=\([^&]*\).*/\1/p' <<<"$loc")
  [ -n "$code" ] || { signin_fail "no code in $loc"; return 1; }
  status=$(curl -sS -o "$dir/token.json" -w '%{http_code}' \
    -u "$(urlenc "$client_id"):$(urlenc "$secret")" "$issuer/oauth/v2/token" \
    -d grant_type=authorization_code --data-urlencode "code=$code" \
    --data-urlencode "redirect_uri=http://127.0.0.1/cb" \
    --data-urlencode "code_verifier=$signin_verifier")
  [ "$status" = 200 ] || { signin_fail "token: $status $(cat "$dir/token.json")"; return 1; }
  idt=$(jq -r .id_token "$dir/token.json")
  at=$(jq -r .access_token "$dir/token.json")
  claims=$(cut -d. -f2 <<<"$idt" | tr '_-' '/+')
  while [ $((${#claims} % 4)) -ne 0 ]; do claims="$claims="; done
  claims=$(base64 -d <<<"$claims" 2>/dev/null) || { signin_fail "id_token is not a JWT"; return 1; }
  [ "$(jq -r .iss <<<"$claims")" = "$issuer" ] || { signin_fail "id_token iss: $claims"; return 1; }
  [ "$(jq -r .nonce <<<"$claims")" = "nc-$tag" ] || { signin_fail "id_token nonce: $claims"; return 1; }
  jq -e --arg c "$client_id" '.aud == $c or (.aud | type == "array" and index($c) != null)' \
    <<<"$claims" >/dev/null || { signin_fail "id_token aud: $claims"; return 1; }
  curl -fsS -H "Authorization: Bearer $at" "$issuer/oidc/v1/userinfo" >"$dir/userinfo.json" ||
    { signin_fail "userinfo refused the access token"; return 1; }
  signin_sub=$(jq -r .sub <<<"$claims")
  [ "$(jq -r .sub "$dir/userinfo.json")" = "$signin_sub" ] || { signin_fail "userinfo sub differs: $(cat "$dir/userinfo.json")"; return 1; }
}
