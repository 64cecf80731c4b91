#!/usr/bin/env bash
# The README's first command without the package installation: on an empty data folder it
# creates a demo user and client and prints issuer, credentials and a working authorization
# URL on stdout; on a second start (store has data) it creates nothing.
. "$(dirname "$0")/lib_server.sh"
# The quick start is the embedded store's demo: scripts/quickstart.sh writes its own config
# with its LMDB store, master key and config in one folder. Under tests/kdbnext/run.sh it
# would still run on LMDB and repeat the plain run, so it says so and skips.
if [ "${KODER_TEST_STORE:-lmdb}" = kdbnext ]; then
  echo "skipped on kdb-next: scripts/quickstart.sh always uses the embedded LMDB store"
  exit 77
fi

jqe() { jq -e "$@" >/dev/null; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$(dirname "$BIN")/.." && pwd)
export QUICKSTART_NO_DEPS=1 QUICKSTART_BUILD=$build QUICKSTART_DATA=$WORK/qs
export KODER_ID_V2_LISTEN=127.0.0.1:0 KODER_ID_V2_WORKERS=1 KODER_ID_V2_POOL_THREADS=4

# start_quickstart OUT: runs it, waits for the server, sets SERVER_PID, PORT, BASE, LOG.
start_quickstart() {
  LOG=$WORK/qs.log
  bash "$repo/scripts/quickstart.sh" >"$1" 2>"$LOG" &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    grep -q 'listening on http://' "$LOG" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "quickstart died:"; cat "$1" "$LOG"; return 1; }
    sleep 0.1
  done
  PORT=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$LOG" | head -1 | sed 's/.*://')
  BASE=http://127.0.0.1:$PORT
}

out1=$WORK/out1
expect "quick start runs the server" start_quickstart "$out1"
expect "prints the issuer" grep -q '^  issuer *http://127.0.0.1:8190$' "$out1"
expect "prints the demo user and a password" bash -c "grep -q '^  demo user *demo' '$out1' && grep -Eq '^  password *[A-Za-z0-9]{8,}$' '$out1'"
cid=$(sed -n 's/^  client_id *//p' "$out1")
secret=$(sed -n 's/^  client_secret *\([A-Za-z0-9]*\).*/\1/p' "$out1")
expect "prints a client id and a 64-char secret" bash -c "[[ '$cid' =~ ^[0-9]{18}$ ]] && [[ '$secret' =~ ^[A-Za-z0-9]{64}$ ]]"
url=$(grep -o 'http://127.0.0.1:8190/oauth/v2/authorize?[^ ]*' "$out1" | head -1)
expect "prints an authorization URL with PKCE S256, state and nonce" bash -c "[[ '$url' == *code_challenge_method=S256* && '$url' == *'&nonce='* && '$url' == *'&state='* && '$url' == *client_id=$cid* ]]"
expect "nothing of it goes to the log" bash -c "! grep -q '$secret' '$LOG' && ! grep -q 'password' '$LOG'"
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE${url#http://127.0.0.1:8190}")
expect "the authorization URL is accepted (redirect to sign-in, got $code)" bash -c "[ '$code' = 302 ] || [ '$code' = 303 ]"
code=$(curl -s -o "$WORK/tok.json" -w '%{http_code}' -u "$cid:$secret" -d grant_type=authorization_code -d code=nope -d redirect_uri=http://127.0.0.1:8191/callback -d code_verifier=abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq "$BASE/oauth/v2/token")
expect "the printed secret authenticates the client (bad code is invalid_grant, got $code)" jqe '.error=="invalid_grant"' "$WORK/tok.json"
expect "data, master key and config stay in the data folder" bash -c "[ -f '$WORK/qs/gateway.conf' ] && [ \"\$(stat -c %a '$WORK/qs/master.key')\" = 600 ] && [ -d '$WORK/qs/store' ]"
expect "stops on SIGTERM" stop_server

out2=$WORK/out2
expect "second start on the same data" start_quickstart "$out2"
expect "says the store has data" grep -q 'already has data; nothing was created' "$out2"
expect "creates no second demo" bash -c "! grep -q password '$out2' && [ \$('$BIN' client list --config '$WORK/qs/gateway.conf' | wc -l) -eq 1 ]"
expect "stops on SIGTERM again" stop_server

finish
