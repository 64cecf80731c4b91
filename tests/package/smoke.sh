# SPDX-License-Identifier: Apache-2.0
# Sourced by side_by_side.sh: the installed binary with the packaged configuration (only
# listen and issuer moved, through the environment, to a free loopback port). Admin commands
# run as root (they must act as koder-id-v2 on the store); serve runs as the unit runs it.
# A sign-in with curl: authorization request with PKCE, the login form (a wrong password
# first), the code exchange with client_secret_basic, the ID token's claims, userinfo, then
# /metrics, and SIGTERM. Uses as_service, free_port, fail, no_foreign_files, $work; sets
# $server_pid.

source "$(dirname "${BASH_SOURCE[0]}")/../lib/curl_signin.sh"

smoke_test() {
  local port issuer conf=/etc/koder-id-v2/gateway.conf bin=/usr/bin/koder-id-v2-gateway i
  local run=$1 # a word to tell the runs apart (users and clients accumulate in the store)
  port=$(free_port)
  issuer=http://127.0.0.1:$port
  export KODER_ID_V2_LISTEN=127.0.0.1:$port KODER_ID_V2_ISSUER=$issuer

  # Admin commands as root: each must act as koder-id-v2 on the store.
  local password="smoke $RANDOM pass $RANDOM" sub client_json client_id secret
  sub=$(printf '%s\n' "$password" | "$bin" user add --config "$conf" --username "smoke-$run" \
    --email "smoke-$run@example.com" --given-name Smoke --family-name Test --email-verified \
    --password-stdin) || fail "user add as root failed"
  no_foreign_files
  client_json=$("$bin" client add --config "$conf" --name "smoke $run" --type web \
    --redirect-uri http://127.0.0.1/cb --json) || fail "client add as root failed"
  client_id=$(jq -r .client_id <<<"$client_json")
  secret=$(jq -r .client_secret <<<"$client_json")
  [ -n "$client_id" ] && [ "$secret" != null ] || fail "client add: $client_json"
  "$bin" check --config "$conf" >"$work/check.out" 2>&1 ||
    { cat "$work/check.out"; fail "check as root failed"; }
  grep -q "^users: [1-9]" "$work/check.out" || { cat "$work/check.out"; fail "check: no users"; }
  no_foreign_files
  echo "smoke: user $sub and client $client_id added as root; check ok; the store is koder-id-v2's"

  as_service "$bin" serve --config "$conf" >"$work/serve.log" 2>&1 &
  server_pid=$!
  for i in $(seq 1 150); do
    curl -fsS -o /dev/null "$issuer/healthz" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log"; fail "serve exited"; }
    sleep 0.1
  done
  curl -fsS "$issuer/.well-known/openid-configuration" >"$work/discovery.json" ||
    { cat "$work/serve.log"; fail "no discovery document"; }
  [ "$(jq -r .issuer "$work/discovery.json")" = "$issuer" ] || fail "discovery: wrong issuer"
  curl -fsS "$(jq -r .jwks_uri "$work/discovery.json")" >"$work/jwks.json" || fail "no JWKS"
  jq -e '.keys | length >= 1 and all(.kty == "RSA" and (.kid | length > 0) and (.n | length > 300))' \
    "$work/jwks.json" >/dev/null || fail "JWKS without an RSA key: $(cat "$work/jwks.json")"
  echo "smoke: discovery and JWKS ($(jq '.keys | length' "$work/jwks.json") key(s)) from $issuer"

  # --- sign in with curl (tests/lib/curl_signin.sh) ---
  local jar=$work/cookies
  curl_signin "$issuer" "$client_id" "$secret" "smoke-$run" "$password" "$run" "$jar" "$work" ||
    fail "$signin_error"
  [ "$signin_sub" = "$sub" ] || fail "signed in as $signin_sub, want $sub"
  [ "$(jq -r .email "$work/userinfo.json")" = "smoke-$run@example.com" ] || fail "userinfo email"
  echo "smoke: signed in as smoke-$run (sub $sub): code, tokens, ID token claims, userinfo"

  # --- /metrics saw it ---
  curl -fsS "$issuer/metrics" >"$work/metrics.txt" || fail "no /metrics"
  metric() { awk -v s="$1" '$1 == s { print $2 }' "$work/metrics.txt"; }
  [ "$(metric 'koder_id_v2_tokens_issued_total{grant="authorization_code"}')" = 1 ] ||
    fail "metrics: tokens issued by authorization_code is not 1"
  [ "$(metric 'koder_id_v2_login_failures_total')" = 1 ] || fail "metrics: login failures is not 1"
  [ "$(metric 'koder_id_v2_http_requests_total{endpoint="token",status="200"}')" = 1 ] ||
    fail "metrics: token requests"
  [ -n "$(metric 'koder_id_v2_signing_key_age_seconds')" ] || fail "metrics: no key age"
  echo "smoke: /metrics counted the token, the login failure and the key age"

  kill -TERM "$server_pid"
  local rc=0
  wait "$server_pid" || rc=$?
  server_pid=
  [ "$rc" = 0 ] || { cat "$work/serve.log"; fail "serve exited $rc on SIGTERM"; }
  grep -q 'serve: stopped' "$work/serve.log" || fail "serve did not stop cleanly"
  unset KODER_ID_V2_LISTEN KODER_ID_V2_ISSUER
}
