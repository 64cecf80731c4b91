#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs a command against a fresh reference kdb-next server (tests/kdbnext/server.py, Python
# grpcio): starts it on a free loopback port in a temporary folder, exports KODER_TEST_KDB_*
# (and KODER_TEST_STORE=kdbnext) for the command, and stops the server afterwards.
#
# usage: run.sh [--tls | --mtls] [--gateway-env] [server.py flags...] -- command [args...]
#   --tls          throwaway CA + server certificate for DNS:localhost; address localhost:PORT
#   --mtls         as --tls, and the server requires a client certificate (one is generated)
#   --gateway-env  also export KODER_ID_V2_STORAGE=kdbnext and KODER_ID_V2_KDBNEXT_* so that
#                  every koder-id-v2-gateway the command starts uses this server (environment
#                  overrides config files). The whole integration suite on kdb-next, one fresh
#                  server per test:
#                    meson test -C build --suite integration \
#                      --wrapper "$PWD/tests/kdbnext/run.sh --gateway-env --"
#
# Exported: KODER_TEST_KDB_ADDRESS, _PORT, _TOKEN_FILE, _TENANT (1000001), _PLAINTEXT (1/0),
# _CA (= _CA_FILE), _OTHER_CA (a CA that signed nothing the server has), _CERT/_KEY (= _CERT_FILE/
# _KEY_FILE: the client's, --mtls),
# _CONTROL (server.py --control), _PID, _DIR, _DB (the server's SQLite file, plus -wal).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tls=0
mtls=0
gateway_env=0
sargs=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  case $1 in
  --tls) tls=1 ;;
  --mtls) tls=1; mtls=1 ;;
  --gateway-env) gateway_env=1 ;;
  *) sargs+=("$1") ;;
  esac
  shift
done
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || { echo "usage: run.sh [--tls|--mtls] [server flags] -- command [args]" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kdbnext-test.XXXXXX")
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill -CONT "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

openssl rand -hex 24 >"$tmp/token"
chmod 600 "$tmp/token"

if [ $tls = 1 ]; then
  (
    cd "$tmp"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj /CN=kdbnext-test-ca 2>/dev/null
    openssl req -x509 "${ec[@]}" -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=other-ca 2>/dev/null
    openssl req "${ec[@]}" -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
    printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
      -days 2 -extfile server.ext 2>/dev/null
    openssl req "${ec[@]}" -keyout client.key -out client.csr -subj /CN=koder-id-v2 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem \
      -days 2 -extfile client.ext 2>/dev/null
  )
  sargs+=(--tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key")
  [ $mtls = 1 ] && sargs+=(--client-ca "$tmp/ca.pem")
fi

/usr/bin/python3 "$here/server.py" --port 0 --port-file "$tmp/port" --token-file "$tmp/token" \
  --control "$tmp/control" --db "$tmp/kdb.sqlite" "${sargs[@]}" 2>"$tmp/server.log" &
pid=$!
for _ in $(seq 300); do
  [ -s "$tmp/port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/server.log" >&2; echo "run.sh: server.py exited" >&2; exit 1; }
  sleep 0.1
done
[ -s "$tmp/port" ] || { cat "$tmp/server.log" >&2; echo "run.sh: server.py did not start" >&2; exit 1; }
port=$(cat "$tmp/port")

export KODER_TEST_STORE=kdbnext
export KODER_TEST_KDB_PORT=$port
export KODER_TEST_KDB_TOKEN_FILE=$tmp/token
export KODER_TEST_KDB_TENANT=${KODER_TEST_KDB_TENANT:-1000001}
export KODER_TEST_KDB_CONTROL=$tmp/control
export KODER_TEST_KDB_PID=$pid
export KODER_TEST_KDB_DIR=$tmp
export KODER_TEST_KDB_DB=$tmp/kdb.sqlite
if [ $tls = 1 ]; then
  export KODER_TEST_KDB_ADDRESS=localhost:$port KODER_TEST_KDB_PLAINTEXT=0
  export KODER_TEST_KDB_CA=$tmp/ca.pem KODER_TEST_KDB_OTHER_CA=$tmp/other-ca.pem
  export KODER_TEST_KDB_CA_FILE=$KODER_TEST_KDB_CA
  if [ $mtls = 1 ]; then
    export KODER_TEST_KDB_CERT=$tmp/client.pem KODER_TEST_KDB_KEY=$tmp/client.key
    export KODER_TEST_KDB_CERT_FILE=$KODER_TEST_KDB_CERT KODER_TEST_KDB_KEY_FILE=$KODER_TEST_KDB_KEY
  fi
else
  export KODER_TEST_KDB_ADDRESS=127.0.0.1:$port KODER_TEST_KDB_PLAINTEXT=1
fi

# A gateway the command starts reads only what we say here (and nothing from an outer run.sh).
unset $(env | grep -o '^KODER_ID_V2_[A-Z0-9_]*' || true)
if [ $gateway_env = 1 ]; then
  export KODER_ID_V2_STORAGE=kdbnext
  export KODER_ID_V2_KDBNEXT_ADDRESS=$KODER_TEST_KDB_ADDRESS
  export KODER_ID_V2_KDBNEXT_TOKEN_FILE=$KODER_TEST_KDB_TOKEN_FILE
  export KODER_ID_V2_KDBNEXT_TENANT=$KODER_TEST_KDB_TENANT
  export KODER_ID_V2_KDBNEXT_TIMEOUT_MS=${KODER_ID_V2_KDBNEXT_TIMEOUT_MS:-5000}
  if [ $tls = 1 ]; then
    export KODER_ID_V2_KDBNEXT_PLAINTEXT=off KODER_ID_V2_KDBNEXT_TLS_CA_FILE=$KODER_TEST_KDB_CA
    if [ $mtls = 1 ]; then
      export KODER_ID_V2_KDBNEXT_TLS_CERT_FILE=$KODER_TEST_KDB_CERT
      export KODER_ID_V2_KDBNEXT_TLS_KEY_FILE=$KODER_TEST_KDB_KEY
    fi
  else
    export KODER_ID_V2_KDBNEXT_PLAINTEXT=on
  fi
fi

set +e
"$@"
rc=$?
set -e
if [ $gateway_env = 1 ]; then # on stderr: what the gateways wrote (0 = they never used it)
  /usr/bin/python3 - "$tmp/kdb.sqlite" >&2 <<'PY' || true
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
w = (db.execute("SELECT value FROM meta WHERE name = 'version'").fetchone() or [0])[0]
t, k = db.execute("SELECT COUNT(DISTINCT tenant), COUNT(*) FROM kv").fetchone()
print(f"run.sh: kdb-next applied {w} writes; it holds {k} keys in {t} tenants")
PY
fi
if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then # 77: the command skipped itself
  echo "--- server.py log (last 30 lines) ---" >&2
  tail -n 30 "$tmp/server.log" >&2
fi
exit $rc
