#!/usr/bin/env bash
# The command line as operators and scripts use it: outputs, one-line errors, exit codes
# (0 ok, 1 failure at run time, 2 usage), check on good and broken configs, user and client
# administration.
. "$(dirname "$0")/lib_server.sh"

# --version, --help, help COMMAND
expect "--version exits 0" run 0 --version
expect "--version prints name and version" grep -Eq '^koder-id-v2-gateway [0-9]+\.[0-9]+\.[0-9]+$' "$out"
expect "--help exits 0 on stdout" run 0 --help
expect "--help lists the commands" bash -c "grep -q serve '$out' && grep -q check '$out' && grep -q client '$out'"
expect "help client exits 0" run 0 help client
expect "help client shows client add" out_has "client add --name"
expect "client --help is the same" run 0 client --help
expect "help of an unknown command exits 2" run 2 help nosuch
expect "no arguments exit 2" run 2
expect "no arguments: one line on stderr" one_line_err
expect "unknown command exits 2" run 2 frobnicate
expect "unknown command: one line on stderr" one_line_err
expect "unknown command names it" err_has "frobnicate"

conf=$WORK/gw.conf
write_config "$conf"

# usage errors exit 2 with one line, before touching anything
expect "user add without --email exits 2" run 2 user add --config "$conf" --username x --password-stdin
expect "usage error is one line" one_line_err
expect "user add without --password-stdin exits 2" run 2 user add --config "$conf" --username x --email x@example.com
expect "user with an unknown subcommand exits 2" run 2 user frob
expect "client add with a bad type exits 2" run 2 client add --config "$conf" --name n --type tv --redirect-uri https://a/cb
expect "client add without a redirect uri exits 2" run 2 client add --config "$conf" --name n --type web
expect "client add with a fragment in the redirect exits 2" run 2 client add --config "$conf" --name n --type web --redirect-uri 'https://a/cb#x'
expect "a spa client with a secret is refused (2)" run 2 client add --config "$conf" --name n --type spa --redirect-uri https://a/cb --auth-method basic
expect "refusal says why" err_has "public"
expect "an unknown option exits 2" run 2 client list --config "$conf" --frob
expect "--config without a value exits 2" run 2 check --config
expect "options before the subcommand exit 2" run 2 user --config "$conf" add
expect "options before the subcommand: one line" one_line_err
expect "options before the subcommand: says the subcommand comes first" err_has "missing subcommand"
expect "export with an unknown option exits 2" run 2 export --config "$conf" --frob
expect "export with an unknown option: one line naming it" err_has "unknown option '--frob'"
expect "export with an unknown option creates no file" test ! -e ./--frob -a ! -e "$WORK/--frob"
expect "--set of an unknown key exits 1" run 1 check --config "$conf" --set frob=1
expect "--set of an unknown key says --set" err_has "\-\-set frob: unknown key"
expect "--set out of range names --set and the key" bash -c "'$BIN' check --config '$conf' --set workers=9999 2>&1 | grep -q -- '--set: workers:'"

# broken configs: exit 1, one line naming key and line
printf 'issuer = http://127.0.0.1:1\nlisten = 127.0.0.1:0\nbogus = 1\n' >"$WORK/bad1.conf"
expect "check: unknown key exits 1" run 1 check --config "$WORK/bad1.conf"
expect "check: unknown key is one line" one_line_err
expect "check: names key and line" err_has "bad1.conf:3: unknown key 'bogus'"
printf 'workers = 2\nworkers = 3\n' >"$WORK/bad2.conf"
expect "check: duplicate key exits 1" run 1 check --config "$WORK/bad2.conf"
expect "check: duplicate named with its line" err_has "bad2.conf:2: duplicate key 'workers'"
printf '\n\nissuer = http://example.com/\n' >"$WORK/bad3.conf"
expect "check: bad issuer exits 1" run 1 check --config "$WORK/bad3.conf"
expect "check: bad issuer names key and line" err_has "bad3.conf:3: issuer"
printf 'storage = kdbnext\nkdbnext.address = 127.0.0.1:1\nkdbnext.tenant = 42\n' >"$WORK/bad4.conf"
expect "check: a preseeded kdb-next tenant exits 1" run 1 check --config "$WORK/bad4.conf"
expect "check: says why" err_has "preseeded range"
expect "check: missing config file exits 1" run 1 check --config "$WORK/nope.conf"
expect "environment: unknown variable exits 1 naming it" bash -c "! KODER_ID_V2_LISTN=1 '$BIN' check --config '$conf' 2>'$err' >/dev/null && grep -q KODER_ID_V2_LISTN '$err'"
expect "environment: bad value exits 1 naming it" bash -c "! KODER_ID_V2_WORKERS=x '$BIN' check --config '$conf' 2>'$err' >/dev/null && grep -q KODER_ID_V2_WORKERS '$err'"

# a fresh data dir: serve creates master key and first signing key
start_server "$conf"
# a second serve on the port the first one holds must fail, not share it (SO_REUSEPORT would
# let it join the first one's socket group and take half of its connections)
expect "a second serve on a port in use exits 1" bash -c "
  timeout 10 '$BIN' serve --config '$conf' --set listen=127.0.0.1:$PORT >'$out' 2>'$err'; [ \$? = 1 ]"
expect "...saying the address is in use" err_has "in use"
stop_server
expect "serve created the master key 0600" bash -c "[ \"\$(stat -c %a '$WORK/master.key')\" = 600 ] && [ \"\$(stat -c %s '$WORK/master.key')\" = 32 ]"

# user add
expect "user add exits 0" bash -c "printf 'correct horse battery\n' | '$BIN' user add --config '$conf' --username alice --email alice@example.com --given-name Alice --family-name Liddell --password-stdin >'$out' 2>'$err'"
expect "user add prints an 18-digit id" grep -Eq '^[0-9]{18}$' "$out"
uid=$(cat "$out")
expect "the same username again exits 1" bash -c "! printf 'x\n' | '$BIN' user add --config '$conf' --username ALICE --email b@example.com --password-stdin >'$out' 2>'$err'"
expect "...saying it is taken" err_has "taken"
expect "an empty password exits 1" bash -c "! printf '\n' | '$BIN' user add --config '$conf' --username bob --email b@example.com --password-stdin >/dev/null 2>&1"

# user password (the effect on sign-in is checked in browser_login.sh)
pw() { # expected-exit, password line, args...
  local want=$1 line=$2; shift 2
  local rc=0
  printf '%s\n' "$line" | "$BIN" user password --config "$conf" "$@" >"$out" 2>"$err" || rc=$?
  [ "$rc" -eq "$want" ] || { echo "  user password $* exited $rc, wanted $want: $(cat "$err")"; return 1; }
}
expect "user password by id exits 0" pw 0 'a new battery staple' --user "$uid" --password-stdin
expect "...and prints the id" grep -qx "$uid" "$out"
expect "user password by login name, --change-required" pw 0 'another one here' --user ALICE --password-stdin --change-required
expect "...prints the same id" grep -qx "$uid" "$out"
expect "user password: an unknown user exits 1" pw 1 'a new battery staple' --user nobody --password-stdin
expect "...saying so in one line" one_line_err
expect "...naming the problem" err_has "no such user"
expect "user password: too short exits 1" pw 1 'short' --user alice --password-stdin
expect "...naming the rule" err_has "at least 8 characters"
expect "user password: an empty line exits 1" pw 1 '' --user alice --password-stdin
expect "user password without --password-stdin exits 2" run 2 user password --config "$conf" --user alice
expect "user password without --user exits 2" run 2 user password --config "$conf" --password-stdin
expect "user password --password=x exits 2" run 2 user password --config "$conf" --user alice --password=x

# client add / list / show
expect "client add web --json exits 0" run 0 client add --config "$conf" --name "Demo app" --type web --redirect-uri http://127.0.0.1:8191/callback --redirect-uri https://app.example.com/cb --post-logout-uri https://app.example.com/ --json
expect "--json is one object with id and a 64-char secret" jqe '(.client_id|test("^[0-9]{18}$")) and (.client_secret|test("^[A-Za-z0-9]{64}$")) and (keys|length==2)' "$out"
cid=$(jq -r .client_id "$out")
secret=$(jq -r .client_secret "$out")
expect "client add spa --json has no secret" run 0 client add --config "$conf" --name spa --type spa --redirect-uri http://localhost:3000/cb --client-id my-spa@demo --json
expect "...only the client id" jqe '.client_id=="my-spa@demo" and (has("client_secret")|not)' "$out"
expect "an existing client id exits 1" run 1 client add --config "$conf" --name again --type spa --redirect-uri http://localhost:3000/cb --client-id my-spa@demo
expect "client add plain prints id and secret" run 0 client add --config "$conf" --name native --type native --redirect-uri com.example.app:/cb --access-token jwt
expect "...client_id line" out_has "^client_id: "
expect "client list exits 0" run 0 client list --config "$conf"
expect "client list shows all three" bash -c "[ \$(wc -l <'$out') -eq 3 ] && grep -q '$cid' '$out' && grep -q 'my-spa@demo' '$out'"
expect "client list --json" run 0 client list --config "$conf" --json
expect "...an array of three without secrets" bash -c "jq -e 'length==3 and all(.[]; has(\"secret_hash\")|not)' '$out' >/dev/null && ! grep -q '$secret' '$out'"
expect "client show --json" run 0 client show --config "$conf" "$cid" --json
expect "...fields as added" jqe '.name=="Demo app" and .type=="web" and .auth_method=="basic" and .has_secret and (.redirect_uris|length==2) and .post_logout_redirect_uris==["https://app.example.com/"]' "$out"
expect "...spa defaults to auth none" bash -c "'$BIN' client show --config '$conf' my-spa@demo --json | jq -e '.auth_method==\"none\" and (.has_secret|not)' >/dev/null"
expect "client show text" run 0 client show --config "$conf" "$cid"
expect "...never prints the secret" bash -c "! grep -q '$secret' '$out'"
expect "client show of an unknown id exits 1" run 1 client show --config "$conf" 999
expect "...one line" one_line_err
if [ "${KODER_TEST_STORE:-lmdb}" = kdbnext ]; then # the reference kdb-next's SQLite files
  expect "the secret is not stored in clear" bash -c "ls '$KODER_TEST_KDB_DB' >/dev/null && ! grep -qa '$secret' '$KODER_TEST_KDB_DB'*"
else
  expect "the secret is not stored in clear" bash -c "! grep -rqa '$secret' '$WORK/data'"
fi

# keys list and check on a populated store
expect "keys list exits 0" run 0 keys list --config "$conf"
expect "keys list shows one signing v2 key" bash -c "grep -Ec '^[0-9]{18}\sRS256\ssigning\sv2' '$out' | grep -qx 1"
expect "check exits 0" run 0 check --config "$conf"
expect "check prints the counts" bash -c "grep -qx 'users: 1' '$out' && grep -qx 'clients: 3' '$out' && grep -qx 'orgs: 1' '$out' && grep -qx 'projects: 1' '$out'"
expect "check prints issuer and the key id" bash -c "grep -qx 'issuer: http://127.0.0.1:18190' '$out' && grep -Eq '^key: [0-9]{18} RS256 signing' '$out'"
# client add --response-type (v1's three; the grant types follow)
expect "client add --response-type id_token twice" run 0 client add --config "$conf" --name legacy --type spa --redirect-uri https://legacy.example.com/cb --response-type id_token --response-type 'id_token token' --client-id legacy@demo --json
expect "...shows both implicit types and only the implicit grant" bash -c "'$BIN' client show --config '$conf' legacy@demo --json | jq -e '.response_types==[\"id_token\",\"id_token token\"] and .grant_types==[\"implicit\"]' >/dev/null"
expect "client add with code and id_token" run 0 client add --config "$conf" --name mixed --type web --redirect-uri https://mixed.example.com/cb --response-type code --response-type id_token --client-id mixed@demo
expect "...code, id_token; authorization_code, implicit, refresh_token" bash -c "'$BIN' client show --config '$conf' mixed@demo --json | jq -e '.response_types==[\"code\",\"id_token\"] and .grant_types==[\"authorization_code\",\"implicit\",\"refresh_token\"]' >/dev/null"
expect "...a client without the option has code" bash -c "'$BIN' client show --config '$conf' my-spa@demo --json | jq -e '.response_types==[\"code\"] and .grant_types==[\"authorization_code\",\"refresh_token\"]' >/dev/null"
expect "client add with a bad response type exits 2" run 2 client add --config "$conf" --name n --type web --redirect-uri https://a/cb --response-type token
expect "...one line" one_line_err
expect "client add with a hybrid response type exits 2" run 2 client add --config "$conf" --name n --type web --redirect-uri https://a/cb --response-type 'code id_token'

expect "check: a --set flag overrides the file" run 0 check --config "$conf" --set issuer=https://id.example.com
expect "...and shows it" out_has "issuer: https://id.example.com"
expect "check: env overrides the file" bash -c "KODER_ID_V2_ISSUER=https://env.example.com '$BIN' check --config '$conf' | grep -qx 'issuer: https://env.example.com'"

# a wrong master key is a problem check and serve both report
cp "$WORK/master.key" "$WORK/master.key.good"
head -c 32 /dev/urandom >"$WORK/master.key"
expect "check with another master key exits 1" run 1 check --config "$conf"
expect "...one line saying the master key does not decrypt" bash -c "[ \$(wc -l <'$err') -eq 1 ] && grep -q 'does not decrypt' '$err'"
expect "serve with another master key exits 1" run 1 serve --config "$conf"
expect "...one line" bash -c "[ \$(grep -vc '^<6>' '$err') -eq 1 ]"
cp "$WORK/master.key.good" "$WORK/master.key"
chmod 644 "$WORK/master.key"
expect "a world-readable master key is refused" run 1 check --config "$conf"
expect "...saying so" err_has "readable"
chmod 600 "$WORK/master.key"
head -c 31 /dev/urandom >"$WORK/short.key"; chmod 600 "$WORK/short.key"
expect "a master key of the wrong size is refused" run 1 check --config "$conf" --set master_key_file="$WORK/short.key"
expect "...saying so" err_has "exactly 32 bytes"
if [ "${KODER_TEST_STORE:-lmdb}" = kdbnext ]; then
  expect "check with kdb-next unreachable exits 1" run 1 check --config "$conf" --set kdbnext.address=127.0.0.1:1
else
  expect "check on a missing data dir exits 1" run 1 check --config "$conf" --set data_dir="$WORK/none"

# serve's start-up failures are one line and exit 1
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$port)); s.listen(); time.sleep(30)" &
holder=$!
for _ in $(seq 1 100); do
  ss -ltnH "sport = :$port" 2>/dev/null | grep -q . && break
  sleep 0.05
done
expect "serve on a port in use exits 1" run 1 serve --config "$conf" --set listen=127.0.0.1:$port
expect "...one line naming the address" bash -c "[ \$(wc -l <'$err') -eq 1 ] && grep -q '127.0.0.1:$port' '$err'"
kill $holder 2>/dev/null || true
mkdir -p "$WORK/ro"; chmod 500 "$WORK/ro"
if [ "$(id -u)" = 0 ]; then
  # root writes anywhere; a missing folder is what stops it
  missing_key=$WORK/no/such/dir/master.key
else
  missing_key=$WORK/ro/master.key
fi
expect "serve with a master key it cannot create exits 1" run 1 serve --config "$conf" --set data_dir="$WORK/data2" --set master_key_file="$missing_key"
expect "...one line saying it cannot create it" bash -c "[ \$(wc -l <'$err') -eq 1 ] && grep -q 'cannot create' '$err'"
fi

finish
