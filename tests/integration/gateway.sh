# SPDX-License-Identifier: Apache-2.0
# Shared by the token-side integration suites (sourced, not run): a throw-away gateway on a
# free loopback port over a fresh store in a temporary folder (LMDB; under
# tests/kdbnext/run.sh --gateway-env a kdb-next tenant of its own per gw_init, see
# tests/lib/stores.sh), seeded through the real CLI (`user add`, `client add`). Everything is
# removed on exit.
#
#   gw_init BINARY            temporary folder, config; sets GW_BIN, GW_TMP, GW_CONF
#   gw_user LOGIN PASSWORD    `user add` (email LOGIN@example.com, verified)
#   gw_client VAR ARGS...     `client add --json ARGS`; sets VAR_ID and VAR_SECRET
#   gw_import SQL DB          loads v1's dump SQL into database DB of a throw-away PostgreSQL
#                             (pg.sh, started on first use, stopped on exit) and runs
#                             `import-zitadel` from it (output in GW_TMP/import.out)
#   gw_start                  `serve` on a free port; sets GW_ISSUER, GW_PID
#   gw_alive                  true while the server answers /healthz
#   gw_stop                   SIGTERM, wait; fails on a bad exit or any sanitizer report
#   gw_log_tail               the server log, as TAP comments
#   gw_inventory BINARY SEED  gw_init, then v1's Koder inventory imported (gw_import, database
#                             inv); gw_seed ARGS... runs grants_seed SEED on the store
#   gw_need_rp                bails out unless openid-client (node_modules here) and jq are there
#   gw_need_fixtures          bails out unless v1's fixtures are in GW_FX (KODER_FIXTURES, else
#                             ../shared/fixtures/zitadel beside the source tree, KODER_SRC)
#   gw_node_tap SCRIPT ENV... runs a node suite printing TAP lines without the plan (rp_lib.mjs)
#                             with the ENV assignments, prints them; gw_check numbers on
#   gw_check DESC CMD...      one more TAP line: ok when CMD succeeds
#   gw_tap_end                the server still answers, its log when anything failed, a clean
#                             stop, the plan; exits 0 only when every check held
#   tap_ok / tap_not_ok DESC, tap_check DESC GOT WANT, tap_bail WHY, tap_end
#                             TAP lines numbered in order; tap_end prints the plan and
#                             returns 1 when any check failed

GW_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$GW_HERE/../lib/stores.sh"

gw_init() {
  GW_BIN=$(readlink -f "$1")
  GW_TMP=$(mktemp -d /tmp/koder-token-it-XXXXXX)
  GW_CONF=$GW_TMP/gateway.conf
  GW_PID=
  GW_N=0
  GW_STATUS=0
  mkdir -p "$GW_TMP/data"
  store_conf_own_tenant
  # The issuer is fixed once the port is known; seeding does not need it.
  cat >"$GW_CONF" <<CONF
issuer = http://127.0.0.1:1
$(store_conf "$GW_TMP/data")
master_key_file = $GW_TMP/master.key
password.yescrypt_cost = 3
log_level = info
CONF
  trap gw_cleanup EXIT
}

gw_cleanup() {
  if [ -n "${GW_PID:-}" ]; then
    kill "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
  fi
  [ -n "${GW_PGDIR:-}" ] && "$GW_HERE/pg.sh" stop "$GW_PGDIR"
  [ -n "${GW_TMP:-}" ] && rm -rf "$GW_TMP"
}

gw_import() {
  if [ -z "${GW_PGDIR:-}" ]; then
    GW_PGDIR=$("$GW_HERE/pg.sh" start) || return 1
  fi
  "$GW_HERE/pg.sh" load "$GW_PGDIR" "$2" "$1" || return 1
  "$GW_BIN" import-zitadel --config "$GW_CONF" --dsn "$("$GW_HERE/pg.sh" dsn "$GW_PGDIR" "$2")" \
    >"$GW_TMP/import.out" 2>&1 || { cat "$GW_TMP/import.out" >&2; return 1; }
}

gw_user() {
  printf '%s\n' "$2" | "$GW_BIN" user add --config "$GW_CONF" --username "$1" \
    --email "$1@example.com" --email-verified --given-name Ada --family-name Lovelace \
    --password-stdin >"$GW_TMP/user.log" 2>&1 || { cat "$GW_TMP/user.log" >&2; return 1; }
}

gw_client() {
  local var=$1 out
  shift
  out=$("$GW_BIN" client add --config "$GW_CONF" --json "$@" 2>"$GW_TMP/client.err") ||
    { cat "$GW_TMP/client.err" >&2; return 1; }
  printf -v "${var}_ID" '%s' "$(jq -r .client_id <<<"$out")"
  printf -v "${var}_SECRET" '%s' "$(jq -r '.client_secret // ""' <<<"$out")"
}

gw_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

gw_start() {
  local port
  for _ in 1 2 3; do # a port taken between the probe and the bind: try another
    port=$(gw_free_port)
    GW_ISSUER="http://127.0.0.1:$port"
    sed -i "s|^issuer = .*|issuer = $GW_ISSUER|" "$GW_CONF"
    LSAN_OPTIONS="suppressions=$GW_HERE/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
      "$GW_BIN" serve --config "$GW_CONF" --set "listen=127.0.0.1:$port" >"$GW_TMP/serve.log" 2>&1 &
    GW_PID=$!
    for _ in $(seq 1 100); do
      if curl -fsS -o /dev/null "$GW_ISSUER/healthz" 2>/dev/null; then return 0; fi
      kill -0 "$GW_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
    GW_PID=
  done
  cat "$GW_TMP/serve.log" >&2
  return 1
}

gw_alive() {
  kill -0 "$GW_PID" 2>/dev/null && curl -fsS -o /dev/null --max-time 5 "$GW_ISSUER/healthz"
}

gw_stop() {
  local rc=0
  [ -n "${GW_PID:-}" ] || return 1
  kill -TERM "$GW_PID" 2>/dev/null || true
  wait "$GW_PID" 2>/dev/null || rc=$?
  GW_PID=
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|Sanitizer:' "$GW_TMP/serve.log"; then
    echo "# sanitizer report in the server log:"
    grep -A30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:|Sanitizer:' "$GW_TMP/serve.log" |
      head -60 | sed 's/^/#   /'
    return 1
  fi
  if [ $rc -ne 0 ]; then
    echo "# the server exited with status $rc"
    return 1
  fi
  return 0
}

gw_log_tail() {
  sed 's/^/#   /' "$GW_TMP/serve.log" | tail -"${1:-40}"
}

tap_n=0
tap_failed=0
tap_ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $1"; }
tap_not_ok() { tap_n=$((tap_n + 1)); tap_failed=1; echo "not ok $tap_n - $1"; }
tap_check() { if [ "$2" = "$3" ]; then tap_ok "$1"; else tap_not_ok "$1 (got '$2', want '$3')"; fi; }
tap_bail() { echo "Bail out! $*"; exit 1; }
tap_end() { echo "1..$tap_n"; return $tap_failed; }

gw_need_rp() {
  [ -d "$GW_HERE/node_modules/openid-client" ] ||
    { echo "Bail out! openid-client missing in tests/integration: run scripts/deps.sh test"; exit 1; }
  command -v jq >/dev/null || { echo "Bail out! jq missing: run scripts/deps.sh test"; exit 1; }
}

gw_inventory() {
  gw_need_fixtures
  gw_init "$1"
  GW_SEED=$(readlink -f "$2")
  gw_import "$GW_FX/koder-inventory.sql" inv ||
    { echo "Bail out! cannot import the inventory"; exit 1; }
}

gw_seed() { "$GW_SEED" --config "$GW_CONF" "$@"; }

gw_need_fixtures() {
  GW_FX=${KODER_FIXTURES:-${KODER_SRC:-$GW_HERE/../..}/../shared/fixtures/zitadel}
  [ -f "$GW_FX/koder-inventory.sql" ] || { echo "Bail out! fixtures not found in $GW_FX"; exit 1; }
}

gw_node_tap() {
  local script=$1
  shift
  env "$@" node "$script" >"$GW_TMP/node.tap" || GW_STATUS=1
  cat "$GW_TMP/node.tap"
  GW_N=$((GW_N + $(grep -cE '^(not )?ok ' "$GW_TMP/node.tap")))
}

gw_check() {
  local d=$1
  shift
  GW_N=$((GW_N + 1))
  if "$@"; then echo "ok $GW_N - $d"; else echo "not ok $GW_N - $d"; GW_STATUS=1; fi
}

gw_tap_end() {
  gw_check "the server is still serving" gw_alive
  if [ "$GW_STATUS" -ne 0 ]; then
    echo "# server log:"
    gw_log_tail 40
  fi
  gw_check "the server stops cleanly, no sanitizer report" gw_stop
  echo "1..$GW_N"
  exit "$GW_STATUS"
}
