#!/usr/bin/env bash
# Benchmark of the token endpoint's grants (issue 5): client_credentials with a JWT (RS256)
# and an opaque access token, refresh_token (rotating; a pool of single-use tokens), and the
# authorization code exchange (a pool of codes), each beside the RSA-2048 signing limit of
# this machine measured in the same run (`openssl speed -multi NPROC rsa2048`). Not a test.
# Also shows what a client secret costs: the machine users' secrets are yescrypt (never
# rehashed), so a request that checked the hash every time could not go faster than the
# first, uncached request; the first and a later request are timed with curl.
#
# The second reference is node-oidc-provider (bench/oidc-provider, `npm install` there) doing
# client_credentials with client_secret_basic and a JWT (RS256) or opaque access token: one
# Node process (one core), its defaults (in-memory store, plain secret comparison, no log).
#
# usage: [POOL_PER_S=5000] bench/grants.sh [DURATION_S] [CONNECTIONS]   (defaults 10, 32)
# needs: wrk, openssl, curl, jq, node; a build in ./build (built here if missing).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
dur=${1:-10}
conns=${2:-32}
cores=$(nproc)
wt=2
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build server/koder-id-v2-gateway tests/integration/grants_seed >/dev/null
bin=build/server/koder-id-v2-gateway
seed_bin=build/tests/integration/grants_seed

work=$(mktemp -d /tmp/kid2-bench-grants-XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  op_stop
  rm -rf "$work"
}
trap cleanup EXIT
op_pid=
op_stop() { [ -n "$op_pid" ] && kill "$op_pid" 2>/dev/null && wait "$op_pid" 2>/dev/null; op_pid=; }
op_start() { # format
  local p
  p=$(free_port)
  node bench/oidc-provider/server.mjs "$p" "$1" >/dev/null 2>&1 &
  op_pid=$!
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$p/.well-known/openid-configuration" 2>/dev/null && break; sleep 0.1; done
  op_url=http://127.0.0.1:$p
}
seed() { "$seed_bin" --config "$work/gw.conf" "$@"; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
gw=http://127.0.0.1:$port
{
  echo "issuer = $gw"
  echo "listen = 127.0.0.1:$port"
  echo "data_dir = $work/data"
  echo "master_key_file = $work/master.key"
  echo "password.yescrypt_cost = 5"
  echo "log_level = info"
} >"$work/gw.conf"
printf 'bench-password-1\n' | "$bin" user add --config "$work/gw.conf" --username ada \
  --email ada@example.com --password-stdin >"$work/user.id"
user_id=$(tr -d '\n' <"$work/user.id")
out=$("$bin" client add --config "$work/gw.conf" --json --name Web --type web \
  --auth-method basic --redirect-uri https://app.example/cb)
web_id=$(jq -r .client_id <<<"$out")
web_secret=$(jq -r .client_secret <<<"$out")
seed refresh "$web_id"
seed machine 910000000000000001 svc-jwt machine-secret-jwt y8 1
seed machine 910000000000000002 svc-opaque machine-secret-opaque y8 0

# The access log is part of what a request costs: it stays on, written to a file.
"$bin" serve --config "$work/gw.conf" 2>"$work/gw.log" &
pid=$!
for _ in $(seq 1 100); do curl -fsS -o /dev/null "$gw/healthz" 2>/dev/null && break; sleep 0.1; done

basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }
cc_jwt_auth=$(basic svc-jwt machine-secret-jwt)
cc_opq_auth=$(basic svc-opaque machine-secret-opaque)
web_auth=$(basic "$(jq -rn --arg v "$web_id" '$v|@uri')" "$web_secret")

# What one secret check costs: the first request verifies yescrypt, later ones hit the cache.
t_first=$(curl -s -o /dev/null -w '%{time_total}' -H "authorization: $cc_opq_auth" \
  -d grant_type=client_credentials "$gw/oauth/v2/token")
t_next=$(curl -s -o /dev/null -w '%{time_total}' -H "authorization: $cc_opq_auth" \
  -d grant_type=client_credentials "$gw/oauth/v2/token")
curl -s -o /dev/null -H "authorization: $cc_jwt_auth" -d grant_type=client_credentials "$gw/oauth/v2/token"
curl -s -o /dev/null -H "authorization: $web_auth" -d grant_type=refresh_token -d refresh_token=x "$gw/oauth/v2/token"

row() { # name, then wrk's output on stdin
  local out rps p50 p99 errs
  out=$(cat)
  rps=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | tr '\n' ' ' || true)
  echo "| $1 | $rps | $p50 | $p99 | ${errs:-none} |"
}

# -mr: the children's rates summed (the human-readable -multi table of OpenSSL 3.0 adds up
# the children's seconds per operation instead, which halves the figure on 2 cores).
rsa_speed() {
  openssl speed -mr -seconds 5 -multi "$cores" rsa2048 2>/dev/null |
    awk -F: '/^\+F2:/ {v=$4} END {printf "%d", v}'
}
speed_before=$(rsa_speed)

table=$(
  wrk -t$wt -c"$conns" -d"${dur}s" --latency -s bench/form.lua "$gw" -- \
    "grant_type=client_credentials&scope=openid" "$cc_jwt_auth" | row "client_credentials, JWT access token (RS256)"
  wrk -t$wt -c"$conns" -d"${dur}s" --latency -s bench/form.lua "$gw" -- \
    "grant_type=client_credentials&scope=openid" "$cc_opq_auth" | row "client_credentials, opaque access token"
  if [ -d bench/oidc-provider/node_modules/oidc-provider ]; then
    op_auth=$(basic svc machine-secret)
    for f in jwt opaque; do
      op_start $f
      curl -s -o /dev/null -H "authorization: $op_auth" -d grant_type=client_credentials "$op_url/token"
      wrk -t$wt -c"$conns" -d"${dur}s" --latency -s bench/form.lua "$op_url" -- \
        "grant_type=client_credentials&scope=api" "$op_auth" /token | row "node-oidc-provider client_credentials, $f access token"
      op_stop
    done
  fi
  # Pools of single-use tokens/codes, POOL_PER_S per second of the run (default 5000: group
  # commit took the code exchange past the old 1000); an exhausted pool shows as non-2xx.
  pool=$((dur * ${POOL_PER_S:-5000}))
  seed rt "$web_id" "$user_id" "$pool" >"$work/rt.txt"
  wrk -t$wt -c"$conns" -d"${dur}s" --latency -s bench/pool.lua "$gw" -- \
    "$work/rt.txt" $wt "grant_type=refresh_token&refresh_token=" "$web_auth" |
    row "refresh_token (rotation; ID token RS256 + opaque access token)"
  seed code "$web_id" "$user_id" https://app.example/cb "$pool" >"$work/code.txt"
  wrk -t$wt -c"$conns" -d"${dur}s" --latency -s bench/pool.lua "$gw" -- \
    "$work/code.txt" $wt "redirect_uri=https%3A%2F%2Fapp.example%2Fcb&grant_type=authorization_code&code=" \
    "$web_auth" | row "authorization_code exchange (ID token RS256 + opaque access token)"
)
speed_after=$(rsa_speed)
echo "machine: $cores cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t$wt -c$conns -d${dur}s --latency on the same machine; gateway with default workers, access log on"
echo "reference: openssl speed -mr -seconds 5 -multi $cores rsa2048: $speed_before RSA-2048 signs/s before the runs, $speed_after after"
echo "client secret (yescrypt cost 8): first request ${t_first}s, the next (cache) ${t_next}s"
echo
echo "| target | req/s | p50 | p99 | errors |"
echo "|---|---|---|---|---|"
echo "$table"
