#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Operations of `serve` (issue 7), against the real binary on a free loopback port:
#   - /metrics in the Prometheus text format: exact counts of requests by endpoint and
#     status, histograms that add up, tokens by grant, login failures, store calls, key age;
#     refused (404) through a proxy, 405 for POST;
#   - SIGHUP: log_level applied at once, other changes named as needing a restart, a broken
#     file changes nothing, the log file reopened after a rotation;
#   - SIGTERM: a request in flight (a slow password check) is answered after the signal,
#     the process exits 0 and the store opens cleanly afterwards.
# Usage: ops.sh BINARY. Prints TAP-ish lines, ends with `N passed, N failed`.
set -euo pipefail
bin=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/curl_signin.sh"
# Under AddressSanitizer: h2o's own buffers live until exit (lsan.supp); anything else leaked,
# and every memory error, fails the stop.
export LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

tmp=$(mktemp -d /tmp/koder-ops-XXXXXX)
chmod 755 "$tmp"
server_pid=
passed=0
cleanup() {
  if [ -n "$server_pid" ]; then kill -9 "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
fail() {
  echo "not ok - $*"
  [ -f "$tmp/gateway.log" ] && tail -n 20 "$tmp/gateway.log" | sed 's/^/# /'
  echo "$passed passed, 1 failed"
  exit 1
}

write_conf() { # extra lines...
  {
    echo "issuer = http://127.0.0.1:PORT"
    echo "listen = 127.0.0.1:0"
    echo "data_dir = $tmp/data"
    echo "master_key_file = $tmp/master.key"
    echo "log_file = $tmp/gateway.log"
    echo "password.yescrypt_cost = 3"
    printf '%s\n' "$@"
  } >"$tmp/gateway.conf"
}

# --- seed, then start on port 0 (the log says which port); the issuer is fixed afterwards ---
mkdir -p "$tmp/data"
write_conf
sed -i 's/PORT/1/' "$tmp/gateway.conf"
password="ops $RANDOM pass"
printf '%s\n' "$password" | "$bin" user add --config "$tmp/gateway.conf" --username opsuser \
  --email ops@example.com --password-stdin >/dev/null || fail "user add"
# a user whose password check is slow (yescrypt cost 10): a request that stays in flight
printf '%s\n' "$password" | "$bin" user add --config "$tmp/gateway.conf" --set password.yescrypt_cost=10 \
  --username slowuser --email slow@example.com --password-stdin >/dev/null || fail "user add (slow)"
client=$("$bin" client add --config "$tmp/gateway.conf" --name ops --type web \
  --redirect-uri http://127.0.0.1/cb --json) || fail "client add"
client_id=$(jq -r .client_id <<<"$client")
secret=$(jq -r .client_secret <<<"$client")

start_server() {
  : >"$tmp/gateway.log"
  "$bin" serve --config "$tmp/gateway.conf" >"$tmp/stdout.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$tmp/gateway.log" | head -n1)
    [ -n "$port" ] && curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && return 0
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/stdout.log"; fail "serve exited"; }
    sleep 0.1
  done
  fail "serve did not start"
}
# The issuer must be where clients reach it: take a free port first, keep listen on it.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
write_conf
sed -i "s/PORT/$port/; s/^listen = .*/listen = 127.0.0.1:$port/" "$tmp/gateway.conf"
start_server
base=http://127.0.0.1:$port
ok "serve started on $base with log_file"
grep -q 'listening on' "$tmp/gateway.log" || fail "log_file does not get the log"
[ ! -s "$tmp/stdout.log" ] || fail "stderr not redirected to log_file: $(cat "$tmp/stdout.log")"

# --- traffic with known counts ---
for _ in 1 2 3; do curl -fsS -o /dev/null "$base/.well-known/openid-configuration"; done
etag=$(curl -fsS -D - -o /dev/null "$base/oauth/v2/keys" | sed -n 's/^etag: *//Ip' | tr -d '\r')
[ "$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$base/oauth/v2/keys")" = 304 ] ||
  fail "JWKS If-None-Match did not give 304"
[ "$(curl -sS -o /dev/null -w '%{http_code}' -d grant_type=password "$base/oauth/v2/token")" = 400 ] ||
  fail "unsupported grant_type did not give 400"
curl_signin "$base" "$client_id" "$secret" opsuser "$password" ops "$tmp/jar" "$tmp" || fail "$signin_error"
ok "traffic: 3 discovery, JWKS 200 + 304, a bad token request, a sign-in with one wrong password"

curl -fsS -D "$tmp/metrics.h" "$base/metrics" >"$tmp/metrics.txt" || fail "GET /metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$tmp/metrics.h" || fail "metrics content type"
m() { awk -v s="$1" '$1 == s { print $2 }' "$tmp/metrics.txt"; }
want() { # series value
  [ "$(m "$1")" = "$2" ] || fail "metrics: $1 is '$(m "$1")', want $2"
}
want 'koder_id_v2_http_requests_total{endpoint="discovery",status="200"}' 3
want 'koder_id_v2_http_requests_total{endpoint="jwks",status="200"}' 1
want 'koder_id_v2_http_requests_total{endpoint="jwks",status="304"}' 1
want 'koder_id_v2_http_requests_total{endpoint="token",status="400"}' 1
want 'koder_id_v2_http_requests_total{endpoint="token",status="200"}' 1
want 'koder_id_v2_http_requests_total{endpoint="login",status="401"}' 1
want 'koder_id_v2_http_requests_total{endpoint="userinfo",status="200"}' 1
want 'koder_id_v2_tokens_issued_total{grant="authorization_code"}' 1
want 'koder_id_v2_tokens_issued_total{grant="refresh_token"}' 0
want 'koder_id_v2_login_failures_total' 1
ok "metrics: requests by endpoint and status, tokens by grant, login failures"
# each histogram: buckets never decrease, +Inf == _count == that endpoint's requests
/usr/bin/python3 - "$tmp/metrics.txt" <<'PY' || fail "metrics: histograms do not add up"
import re, sys, collections
buckets = collections.defaultdict(list); counts = {}; totals = collections.Counter()
for line in open(sys.argv[1]):
    if line.startswith('#') or not line.strip():
        continue
    series, value = line.rsplit(' ', 1)
    v = float(value)
    m = re.match(r'koder_id_v2_(\w+)_bucket\{(\w+)="([^"]+)",le="([^"]+)"\}$', series)
    if m:
        buckets[(m[1], m[3])].append((float('inf') if m[4] == '+Inf' else float(m[4]), v)); continue
    m = re.match(r'koder_id_v2_(\w+)_count\{\w+="([^"]+)"\}$', series)
    if m:
        counts[(m[1], m[2])] = v; continue
    m = re.match(r'koder_id_v2_http_requests_total\{endpoint="([^"]+)",status="\d+"\}$', series)
    if m:
        totals[m[1]] += v
assert buckets, "no histograms"
for key, bs in buckets.items():
    les = [b[0] for b in bs]; vals = [b[1] for b in bs]
    assert les == sorted(les) and les[-1] == float('inf'), key
    assert vals == sorted(vals), ("buckets decrease", key, vals)
    assert vals[-1] == counts[key], ("+Inf != count", key)
for ep, n in totals.items():
    # /metrics itself is counted after it is answered: not in this scrape
    assert counts[('http_request_duration_seconds', ep)] == n, ("count != requests", ep)
assert counts[('store_call_duration_seconds', 'get')] > 0
PY
ok "metrics: histograms cumulative, +Inf == _count == requests per endpoint"
[ "$(m 'koder_id_v2_store_calls_total{op="put",result="ok"}')" -gt 0 ] 2>/dev/null ||
  [ "$(m 'koder_id_v2_store_calls_total{op="cas",result="ok"}')" -gt 0 ] || fail "metrics: no store writes"
[ "$(m 'koder_id_v2_store_calls_total{op="get",result="error"}')" = 0 ] || fail "metrics: store errors"
age=$(m koder_id_v2_signing_key_age_seconds)
[ -n "$age" ] && [ "$age" -ge 0 ] && [ "$age" -lt 600 ] || fail "metrics: key age '$age'"
ok "metrics: store calls by op and result, signing key age ${age}s"
[ "$(curl -sS -o /dev/null -w '%{http_code}' -H 'X-Forwarded-For: 203.0.113.9' "$base/metrics")" = 404 ] ||
  fail "/metrics through a proxy was not refused"
[ "$(curl -sS -o /dev/null -w '%{http_code}' -H 'Forwarded: for=203.0.113.9' "$base/metrics")" = 404 ] ||
  fail "/metrics with Forwarded was not refused"
[ "$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$base/metrics")" = 405 ] || fail "POST /metrics"
ok "metrics: 404 through a proxy, 405 for POST"

# --- SIGHUP ---
hup_and_wait() { # pattern: wait for it in the log
  kill -HUP "$server_pid"
  for _ in $(seq 1 100); do grep -q "$1" "$tmp/gateway.log" && return 0; sleep 0.05; done
  fail "after SIGHUP the log has no '$1'"
}
grep -q 'access: GET /healthz' "$tmp/gateway.log" || fail "no access lines at info"
sed -i 's/^listen = .*/listen = 127.0.0.1:1/' "$tmp/gateway.conf"
echo "log_level = warn" >>"$tmp/gateway.conf"
hup_and_wait "reload: 'listen' changed: restart to apply it"
grep -q "reload: 'log_level' changed" "$tmp/gateway.log" && fail "log_level was named as needing a restart"
: >"$tmp/gateway.log.mark"
before=$(grep -c 'access:' "$tmp/gateway.log")
curl -fsS -o /dev/null "$base/healthz" || fail "not serving after reload"
sleep 0.2
[ "$(grep -c 'access:' "$tmp/gateway.log")" = "$before" ] || fail "log_level = warn not applied (access lines still logged)"
ok "SIGHUP: log_level applied at once, 'listen' named as needing a restart, still serving on the old port"

echo "no_such_key = 1" >>"$tmp/gateway.conf"
hup_and_wait "configuration not reloaded"
curl -fsS -o /dev/null "$base/healthz" || fail "not serving after a broken reload"
sed -i '/^no_such_key/d; s/^log_level = warn/log_level = info/' "$tmp/gateway.conf"
ok "SIGHUP: a broken file is reported and changes nothing"

mv "$tmp/gateway.log" "$tmp/gateway.log.1"
kill -HUP "$server_pid"
for _ in $(seq 1 100); do [ -f "$tmp/gateway.log" ] && grep -q 'reload: done' "$tmp/gateway.log" && break; sleep 0.05; done
[ -f "$tmp/gateway.log" ] || fail "log_file not reopened after rotation"
curl -fsS -o /dev/null "$base/healthz"
for _ in $(seq 1 40); do grep -q 'access: GET /healthz' "$tmp/gateway.log" && break; sleep 0.05; done
grep -q 'access: GET /healthz' "$tmp/gateway.log" || fail "the reopened log gets no access lines (log_level info again)"
ok "SIGHUP: log_file reopened after a rotation, log_level back to info"

# --- SIGTERM with a request in flight ---
curl_signin_form "$base" "$client_id" slow "$tmp/jar2" || fail "$signin_error"
curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -c "$tmp/jar2" -b "$tmp/jar2" \
  "$base/ui/login/login" --data-urlencode "authRequestID=$signin_arid" \
  --data-urlencode "csrf=$signin_csrf" --data-urlencode "loginName=slowuser" \
  --data-urlencode "password=$password" >"$tmp/slow.out" 2>&1 &
slow_pid=$!
# the request is sent once its connection is up; the password check then takes a while
for _ in $(seq 1 100); do
  ss -Htn state established "( dport = :$port )" | grep -q . && break
  sleep 0.02
done
sleep 0.05
kill -TERM "$server_pid"
wait "$slow_pid" || fail "the request in flight failed: $(cat "$tmp/slow.out")"
rc=0
wait "$server_pid" || rc=$?
server_pid=
[ "$rc" = 0 ] || fail "serve exited $rc after SIGTERM"
case "$(cat "$tmp/slow.out")" in "30"[23]" http://127.0.0.1/cb?"*) ;; *) fail "in-flight login answered: $(cat "$tmp/slow.out")" ;; esac
term_line=$(grep -n 'SIGTERM received' "$tmp/gateway.log" | cut -d: -f1 | head -n1)
login_line=$(grep -nE "access: POST /ui/login/login 30[23]" "$tmp/gateway.log" | cut -d: -f1 | tail -n1)
[ -n "$term_line" ] && [ -n "$login_line" ] && [ "$login_line" -gt "$term_line" ] ||
  fail "the slow login was not in flight at SIGTERM (SIGTERM line $term_line, login line $login_line)"
grep -q 'serve: stopped' "$tmp/gateway.log" || fail "no 'serve: stopped'"
curl -sS -o /dev/null "$base/healthz" 2>/dev/null && fail "still answering after SIGTERM"
"$bin" check --config "$tmp/gateway.conf" --set listen=127.0.0.1:1 >"$tmp/check.out" 2>&1 ||
  fail "the store does not open after the stop: $(cat "$tmp/check.out")"
ok "SIGTERM: the login in flight answered (303 with a code) after the signal, exit 0, the store opens cleanly"

echo "$passed passed, 0 failed"
