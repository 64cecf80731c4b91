#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The token endpoint under wrk at 64 concurrent connections, code exchange and refresh, on
# lmdb and on kdb-next (the reference server with 5 ms reads / 26 ms writes of injected
# latency). Codes (and, for refresh, refresh tokens) are minted beforehand through the real
# login page and one browser session (bench/codes.py), with the latency knobs off; each
# request spends one. Prints one result line per grant and backend: req/s, p50/p99, non-2xx
# count, gateway CPU per request (and kdb-next's, measured alike).
#
# usage: bench/token_bench.sh [BUILD_DIR] [code|refresh ...]   (needs wrk, jq, curl)
#   BENCH_SECONDS (5), BENCH_CODES_N (6000; BENCH_CODES_N_LMDB 2500), BENCH_CONNECTIONS (64)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if [ "${1:-}" != --one ]; then
  build=$(cd "${1:-build}" && pwd)
  bin=$build/server/koder-id-v2-gateway
  shift || true
  grants=("$@")
  [ ${#grants[@]} -gt 0 ] || grants=(code refresh)
  for g in "${grants[@]}"; do
    echo "# $(date -u +%FT%TZ) $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$0" --one lmdb "$bin" "$g" || echo "$g lmdb: failed"
    "$root/tests/kdbnext/run.sh" --gateway-env --read-latency-ms 5 --write-latency-ms 26 -- \
      "$0" --one kdbnext "$bin" "$g" || echo "$g kdbnext: failed"
  done
  exit 0
fi

backend=$2
grant=${4:-code}
source "$root/tests/integration/gateway.sh"
GW_HERE=$root/tests/integration
secs=${BENCH_SECONDS:-5}
ncodes=${BENCH_CODES_N:-6000}
# lmdb's fsync-bound exchanges are slow here: fewer grants, minted faster (codes expire)
[ "$backend" = lmdb ] && ncodes=${BENCH_CODES_N_LMDB:-2500}
conns=${BENCH_CONNECTIONS:-64}

ctl_seq=0
ctl() {
  [ "$backend" = kdbnext ] || return 0
  ctl_seq=$((ctl_seq + 1))
  echo "{\"seq\": $ctl_seq, $1}" >"$KODER_TEST_KDB_CONTROL.w"
  mv "$KODER_TEST_KDB_CONTROL.w" "$KODER_TEST_KDB_CONTROL"
  for _ in $(seq 500); do
    [ "$(cat "$KODER_TEST_KDB_CONTROL.ack" 2>/dev/null)" = "$ctl_seq" ] && return 0
    sleep 0.01
  done
  echo "token_bench: server.py did not apply control" >&2
  exit 1
}

cpu_of() { # utime+stime of PID in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}

gw_init "$3"
sed -i "s/^log_level = .*/log_level = warn/" "$GW_CONF"
gw_user bench "bench password 1" >/dev/null
gw_client WEB --name Bench --type web --auth-method basic --redirect-uri https://app.example/cb
gw_start
ctl '"read_latency_ms": 0, "write_latency_ms": 0'
extra=()
[ "$grant" = refresh ] && extra=("$WEB_SECRET")
/usr/bin/python3 "$root/bench/codes.py" "$GW_ISSUER" "$WEB_ID" https://app.example/cb bench \
  "bench password 1" "$ncodes" "${extra[@]}" >"$GW_TMP/codes"
# Steady state: one exchange first, so the client secret's verification is remembered (the
# first burst of 64 would otherwise all queue for bcrypt at once).
warm=$(head -1 "$GW_TMP/codes")
sed -i 1d "$GW_TMP/codes"
if [ "$grant" = refresh ]; then
  curl -fsS -o /dev/null -u "$WEB_ID:$WEB_SECRET" -d grant_type=refresh_token \
    -d "refresh_token=$warm" "$GW_ISSUER/oauth/v2/token"
else
  curl -fsS -o /dev/null -u "$WEB_ID:$WEB_SECRET" -d grant_type=authorization_code \
    -d "code=$warm" --data-urlencode redirect_uri=https://app.example/cb "$GW_ISSUER/oauth/v2/token"
fi
ctl '"read_latency_ms": 5, "write_latency_ms": 26, "reset_stats": true'

tck=$(getconf CLK_TCK)
g0=$(cpu_of "$GW_PID")
k0=$(cpu_of "${KODER_TEST_KDB_PID:-0}")
BENCH_GRANT=$grant BENCH_CODES=$GW_TMP/codes BENCH_AUTH="Basic $(printf '%s:%s' "$WEB_ID" "$WEB_SECRET" | base64 -w0)" \
  BENCH_REDIRECT=https%3A%2F%2Fapp.example%2Fcb \
  wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$root/bench/exchange.lua" "$GW_ISSUER" \
  >"$GW_TMP/wrk.out"
g1=$(cpu_of "$GW_PID")
k1=$(cpu_of "${KODER_TEST_KDB_PID:-0}")
calls=
if [ "$backend" = kdbnext ]; then
  ctl '"stats": true'
  calls=" kdb-next calls: $(cat "$KODER_TEST_KDB_CONTROL.stats")"
fi
gw_stop || true

out=$GW_TMP/wrk.out
total=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$out")
rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$out")
p50=$(awk '$1 == "50%" {print $2}' "$out")
p99=$(awk '$1 == "99%" {print $2}' "$out")
non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$out")
errs=$(sed -n 's/.*Socket errors: *\(.*\)/\1/p' "$out")
gcpu=$(awk -v a="$g0" -v b="$g1" -v t="$tck" -v n="$total" 'BEGIN {printf "%.2f", (b - a) * 1000 / t / n}')
kcpu=-
if [ "$backend" = kdbnext ]; then
  kcpu=$(awk -v a="$k0" -v b="$k1" -v t="$tck" -v n="$total" 'BEGIN {printf "%.2f", (b - a) * 1000 / t / n}')
fi
echo "$grant $backend: $total requests in ${secs}s, $rps req/s, p50 $p50, p99 $p99," \
  "non-2xx ${non2xx:-0}${errs:+, socket errors $errs}, gateway CPU ${gcpu} ms/req," \
  "kdb-next CPU ${kcpu} ms/req (grants minted: $(wc -l <"$GW_TMP/codes"))$calls"
cat "$out" | sed 's/^/#   /'
