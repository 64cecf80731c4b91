#!/usr/bin/env bash
# Benchmark of the cheap endpoints (discovery, JWKS) beside h2o serving a static body of the
# same bytes, on the same machine in the same run (not a test). Prints a Markdown table;
# BENCHMARKS.md records results.
#
# usage: bench/run.sh [DURATION_S] [CONNECTIONS] [ROUNDS]   (defaults 10, 64, 3)
# Targets are run interleaved, ROUNDS times each, so a busy neighbour on the machine hits
# them all alike; the table shows the median round and every round's req/s.
# needs: wrk (apt), a build in ./build (built here if missing).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
dur=${1:-10}
conns=${2:-64}
rounds=${3:-3}
threads=$(nproc)
wrk_threads=2

command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build server/koder-id-v2-gateway bench/static_h2o >/dev/null

work=$(mktemp -d /tmp/kid2-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

{
  echo "issuer = http://127.0.0.1:8190"
  echo "listen = 127.0.0.1:0"
  echo "data_dir = $work/data"
  echo "master_key_file = $work/master.key"
  echo "workers = $threads"
} >"$work/gw.conf"
# One client, so that an Origin header can be an allowed CORS origin (https://app.example).
build/server/koder-id-v2-gateway client add --config "$work/gw.conf" --name bench --type spa \
  --redirect-uri https://app.example/cb >/dev/null
# The access log is part of what a request costs: it stays on, written to a file.
build/server/koder-id-v2-gateway serve --config "$work/gw.conf" 2>"$work/gw.log" &
pids+=($!)
for _ in $(seq 1 100); do
  grep -q 'listening on http://' "$work/gw.log" && break
  sleep 0.1
done
gw_port=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$work/gw.log" | head -1 | sed 's/.*://')
[ -n "$gw_port" ] || { echo "bench: gateway did not start" >&2; cat "$work/gw.log" >&2; exit 1; }
gw=http://127.0.0.1:$gw_port

# The static server serves exactly the discovery document's bytes.
curl -sf "$gw/.well-known/openid-configuration" >"$work/body.json"
st_port=$(free_port)
build/bench/static_h2o "$st_port" "$threads" "$work/body.json" &
pids+=($!)
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$st_port/" >/dev/null && break; sleep 0.1; done
jwks_bytes=$(curl -sf "$gw/oauth/v2/keys" | wc -c)

names=("h2o static body (bench/static_h2o)" "gateway discovery" "gateway JWKS"
  "gateway /healthz" "gateway /readyz (worker pool + store ping)"
  "gateway discovery, allowed CORS Origin" "gateway JWKS, allowed CORS Origin")
urls=("http://127.0.0.1:$st_port/.well-known/openid-configuration"
  "$gw/.well-known/openid-configuration" "$gw/oauth/v2/keys" "$gw/healthz" "$gw/readyz"
  "$gw/.well-known/openid-configuration" "$gw/oauth/v2/keys")
# A request header per target ("" = none): the CORS rows send a registered Origin.
hdrs=("" "" "" "" "" "Origin: https://app.example" "Origin: https://app.example")
curl -sfI -H "${hdrs[5]}" "${urls[5]}" | grep -qi '^access-control-allow-origin: https://app.example' ||
  { echo "bench: the CORS rows would not be allowed" >&2; exit 1; }

declare -A res
for r in $(seq 1 "$rounds"); do
  for i in "${!urls[@]}"; do
    out=$(wrk -t"$wrk_threads" -c"$conns" -d"${dur}s" --latency ${hdrs[$i]:+-H "${hdrs[$i]}"} "${urls[$i]}")
    rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    errs=$(echo "$out" | grep -E 'Non-2xx|Socket errors' | tr -s ' ' | tr '\n' ' ' || true)
    res[$i,$r]="$rps $p50 $p99 ${errs:-none}"
  done
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server threads: $threads (gateway workers = static_h2o threads); wrk -t$wrk_threads -c$conns -d${dur}s --latency on the same machine; $rounds interleaved rounds"
echo "bodies: discovery $(wc -c <"$work/body.json") bytes (static = the same bytes), JWKS $jwks_bytes bytes"
echo
echo "| target | req/s (median) | p50 | p99 | every round req/s | errors |"
echo "|---|---|---|---|---|---|"
for i in "${!urls[@]}"; do
  all=$(for r in $(seq 1 "$rounds"); do echo "${res[$i,$r]}"; done | sort -n)
  med=$(echo "$all" | sed -n "$(( (rounds + 1) / 2 ))p")
  set -- $med
  printf '| %s | %s | %s | %s | %s | %s |\n' "${names[$i]}" "$1" "$2" "$3" \
    "$(echo "$all" | awk '{print $1}' | paste -sd' ')" "${*:4}"
done
