# Shared helpers for the server's integration tests (sourced). A test gets a private
# temporary folder, a config inside it, and a server on a free loopback port picked by the
# kernel (listen = 127.0.0.1:0; the bound port is read from the server's log).
set -euo pipefail

BIN=${1:?usage: $0 path/to/koder-id-v2-gateway}
WORK=$(mktemp -d /tmp/kid2-it-XXXXXX)
SERVER_PID=
fails=0
checks=0

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# See lsan.supp: h2o's per-thread buffer caches, released by the process exit.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lsan.supp"

# Every config key a test does not set comes from here, never from the machine.
unset $(env | grep -o '^KODER_ID_V2_[A-Z0-9_]*' || true)

ok() { checks=$((checks + 1)); echo "ok - $*"; }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL - $*"; }
expect() { # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

# Running the CLI: `run WANT ARGS...` runs the binary, stdout in $out and stderr in $err, and
# fails unless it exited WANT; then the checks on what it printed.
out=$WORK/out
err=$WORK/err
run() { # expected-exit, args...; stdout in $out, stderr in $err
  local want=$1; shift
  local rc=0
  "$BIN" "$@" >"$out" 2>"$err" || rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "  '$*' exited $rc, wanted $want; stderr: $(head -c 300 "$err")"
    return 1
  fi
}
jqe() { jq -e "$@" >/dev/null; }
one_line_err() { [ "$(wc -l <"$err")" -eq 1 ] && [ ! -s "$out" ]; }
err_has() { grep -q -- "$1" "$err" || { echo "  stderr lacks '$1': $(cat "$err")"; return 1; }; }
out_has() { grep -q -- "$1" "$out" || { echo "  stdout lacks '$1': $(head -c 500 "$out")"; return 1; }; }

# The backend of the configs written here: kdb-next under tests/kdbnext/run.sh, which exports
# KODER_TEST_STORE=kdbnext and the server's address (tests/lib/stores.sh reads STORES_BACKEND).
STORES_BACKEND=${KODER_TEST_STORE:-lmdb}
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../lib/stores.sh"

# write_config FILE [extra lines...]: a config of the store in $WORK/data
write_config() { write_config_at "$WORK/data" "$@"; }

# write_config_at DATA_DIR FILE [extra lines...]: a config of DATA_DIR's own store (on
# kdb-next a tenant of its own)
write_config_at() {
  local d=$1 f=$2; shift 2
  {
    echo "issuer = http://127.0.0.1:18190"
    echo "listen = 127.0.0.1:0"
    store_conf "$d"
    echo "master_key_file = $WORK/master.key"
    echo "workers = 2"
    echo "pool_threads = 4"
    echo "lmdb.map_size = 64M"
    if stores_kdbnext; then
      # Under tests/kdbnext/run.sh (which starts a reference kdb-next and exports these):
      #   meson test --suite integration --wrapper "$PWD/tests/kdbnext/run.sh --"
      echo "storage = kdbnext"
      echo "kdbnext.address = $KODER_TEST_KDB_ADDRESS"
      echo "kdbnext.token_file = $KODER_TEST_KDB_TOKEN_FILE"
      echo "kdbnext.timeout_ms = 5000"
      if [ "${KODER_TEST_KDB_PLAINTEXT:-0}" = 1 ]; then
        echo "kdbnext.plaintext = on"
      else
        echo "kdbnext.tls_ca_file = $KODER_TEST_KDB_CA"
      fi
    fi
    for l in "$@"; do echo "$l"; done
  } >"$f"
}

# start_server CONFIG: starts serve, sets SERVER_PID, PORT, BASE, LOG.
start_server() {
  LOG=$WORK/server.log
  "$BIN" serve --config "$1" 2>"$LOG" &
  SERVER_PID=$!
  for _ in $(seq 1 150); do
    if grep -q 'listening on http://' "$LOG"; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "server died:"; cat "$LOG"; return 1; fi
    sleep 0.1
  done
  PORT=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$LOG" | head -1 | sed 's/.*://')
  [ -n "$PORT" ] || { echo "no port in log:"; cat "$LOG"; return 1; }
  BASE=http://127.0.0.1:$PORT
}

stop_server() {
  kill -TERM "$SERVER_PID"
  local rc=0
  wait "$SERVER_PID" || rc=$?
  SERVER_PID=
  return $rc
}

# log_has REGEX: the access line is written just after the answer, so allow it a moment.
log_has() {
  for _ in $(seq 1 50); do
    grep -q -- "$1" "$LOG" && return 0
    sleep 0.05
  done
  return 1
}

finish() {
  echo "# $checks checks, $fails failed"
  [ "$fails" -eq 0 ]
}
