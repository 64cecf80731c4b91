#!/usr/bin/env bash
# The operator commands for v1's model on a fresh install, with the real binary: machine users
# (secret, JWT-profile keys), API apps, projects, roles and user grants; their outputs, exit
# codes (0 ok, 1 failure at run time, 2 usage) and one-line errors; exact option names and
# "--". Then end to end against `serve`: a machine user made here gets tokens with
# client_credentials and with a JWT bearer assertion signed (openssl, RS256) by the key
# registered here, `machine secret` retires the old secret at once, and an API app made here
# introspects (basic, and private_key_jwt). Role claims from grants made with the CLI are
# checked with a real sign-in in grants.sh.
. "$(dirname "$0")/lib_server.sh"
BIN=$(readlink -f "$BIN")

usage_err() { # args...: exits 2 with one line on stderr and nothing on stdout
  run 2 "$@" && one_line_err
}

conf=$WORK/gw.conf
write_config "$conf" "password.yescrypt_cost = 3"
C=(--config "$conf")
cd "$WORK" # a stray "export -- --x" must land here, never in the checkout

# ---- help ----
for c in machine api project role grant; do
  expect "help $c exits 0 and shows '$c'" bash -c "'$BIN' help $c | grep -q '^usage: koder-id-v2-gateway $c '"
done
expect "--help lists the new commands" bash -c "'$BIN' --help | grep -q '^  machine ' && '$BIN' --help | grep -q '^  grant '"

# ---- usage errors: exit 2, one line, nothing written ----
expect "machine without a subcommand" usage_err machine
expect "machine add without --username" usage_err machine add "${C[@]}"
expect "machine add with a bad --access-token" usage_err machine add "${C[@]}" --username s --access-token weird
expect "machine add with a space in the username" usage_err machine add "${C[@]}" --username "a b"
expect "machine secret without --user" usage_err machine secret "${C[@]}"
expect "machine key add without --public-key-file" usage_err machine key add "${C[@]}" --user x
expect "machine key add with a bad --expires" usage_err machine key add "${C[@]}" --user x --public-key-file /dev/null --expires 2030-02-31
expect "machine key add with a past --expires" usage_err machine key add "${C[@]}" --user x --public-key-file /dev/null --expires 2001-01-01
expect "machine key remove without --key-id" usage_err machine key remove "${C[@]}" --user x
expect "machine key frob" usage_err machine key frob
expect "api add without --name" usage_err api add "${C[@]}"
expect "api add private_key_jwt without a key" usage_err api add "${C[@]}" --name a --auth-method private_key_jwt
expect "api add basic with a key" usage_err api add "${C[@]}" --name a --public-key-file /dev/null
expect "api add with a bad auth method" usage_err api add "${C[@]}" --name a --auth-method post
expect "project add without --name" usage_err project add "${C[@]}"
expect "role add without --key" usage_err role add "${C[@]}" --project 1
expect "role add with a '/' in the key" usage_err role add "${C[@]}" --project 1 --key a/b
expect "grant add without --role" usage_err grant add "${C[@]}" --user u --project p
expect "grant add with --json twice" usage_err grant add "${C[@]}" --user u --project p --role r --json --json
expect "a flag with a value" usage_err project list "${C[@]}" --json=yes
expect "an option without its value" usage_err machine add "${C[@]}" --username
expect "nothing was created by the usage errors" store_empty "$BIN" "$conf" "$WORK/data"

# ---- option names are exact (getopt_long would take a unique prefix) ----
expect "user add --user (for --username) exits 2" bash -c "printf 'pw\n' | '$BIN' user add --config '$conf' --user u --email u@example.com --password-stdin >'$out' 2>'$err'; [ \$? = 2 ]"
expect "...one line naming the option" bash -c "one() { [ \$(wc -l <'$err') = 1 ]; }; one && grep -q \"unknown option '--user'\" '$err'"
expect "client add --redirect (for --redirect-uri) exits 2" usage_err client add "${C[@]}" --name n --type web --redirect https://a/cb
expect "client list --js (for --json) exits 2" usage_err client list "${C[@]}" --js
expect "keys list --js exits 2" usage_err keys list "${C[@]}" --js
expect "user password --password (for --password-stdin) exits 2" usage_err user password "${C[@]}" --user ada --password
expect "machine add --user (for --username) exits 2" usage_err machine add "${C[@]}" --user s
expect "--conf (for --config) exits 2" usage_err machine list --conf "$conf"
expect "a short option exits 2" usage_err machine list "${C[@]}" -j
expect "nothing was created by them" store_empty "$BIN" "$conf" "$WORK/data"

# ---- machine users ----
expect "machine add exits 0" run 0 machine add "${C[@]}" --username svc-plain --name "Plain service"
expect "...printing only the 18-digit user id" grep -Eqx '[0-9]{18}' "$out"
plain_id=$(cat "$out")
expect "machine add --secret --json" run 0 machine add "${C[@]}" --username svc-api --secret --json
expect "...user id, client id = username, a 64-char secret" jqe '(.user_id|test("^[0-9]{18}$")) and .client_id=="svc-api" and (.client_secret|test("^[A-Za-z0-9]{64}$")) and (keys|length==3)' "$out"
m_id=$(jq -r .user_id "$out")
m_secret=$(jq -r .client_secret "$out")
expect "machine add --secret (text) shows the secret once, labelled" run 0 machine add "${C[@]}" --username svc-jwt --access-token jwt --secret
expect "...user_id, client_id and client_secret lines" bash -c "grep -Eq '^user_id: [0-9]{18}$' '$out' && grep -qx 'client_id: svc-jwt' '$out' && grep -Eq '^client_secret: [A-Za-z0-9]{64}$' '$out'"
jwt_id=$(sed -n 's/^user_id: //p' "$out")
jwt_secret=$(sed -n 's/^client_secret: //p' "$out")
expect "a taken username exits 1" run 1 machine add "${C[@]}" --username SVC-API
expect "...one line saying so" bash -c "one_line() { [ \$(wc -l <'$err') = 1 ]; }; one_line && grep -q 'already taken' '$err'"
expect "a human's username is taken too" bash -c "printf 'pw1\n' | '$BIN' user add --config '$conf' --username ada --email ada@example.com --password-stdin >'$WORK/ada.id' && ! '$BIN' machine add --config '$conf' --username ada 2>/dev/null"
ada_id=$(cat "$WORK/ada.id")
expect "machine add --org of a missing org exits 1" run 1 machine add "${C[@]}" --username svc-x --org 123
expect "...one line" one_line_err
expect "machine list --json" run 0 machine list "${C[@]}" --json
expect "...the three machine users, no human, no hash" jqe 'length==3 and ([.[].username]|sort)==["svc-api","svc-jwt","svc-plain"] and ([.[]|select(.username=="svc-jwt")][0]|.access_token=="jwt" and .has_secret) and ([.[]|select(.username=="svc-plain")][0]|.access_token=="opaque" and (.has_secret|not)) and all(.[]; has("secret_hash")|not)' "$out"
expect "machine list (text): one line each" bash -c "'$BIN' machine list --config '$conf' | wc -l | grep -qx 3"
expect "machine secret of a human exits 1" run 1 machine secret "${C[@]}" --user ada
expect "...saying it is not a machine user" err_has "not a machine user"
expect "machine secret of nobody exits 1" run 1 machine secret "${C[@]}" --user nobody
expect "...one line" one_line_err

# keys: openssl makes them
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/m.key" 2>/dev/null
openssl pkey -in "$WORK/m.key" -pubout -out "$WORK/m.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/ec.key" 2>/dev/null
openssl pkey -in "$WORK/ec.key" -pubout -out "$WORK/ec.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 2>/dev/null | openssl pkey -pubout -out "$WORK/p384.pub"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 2>/dev/null | openssl pkey -pubout -out "$WORK/rsa1024.pub"
openssl genpkey -algorithm ED25519 2>/dev/null | openssl pkey -pubout -out "$WORK/ed.pub"
expect "machine key add (RSA) prints an 18-digit key id" run 0 machine key add "${C[@]}" --user svc-plain --public-key-file "$WORK/m.pub"
expect "...only the id" grep -Eqx '[0-9]{18}' "$out"
kid=$(cat "$out")
expect "machine key add (EC P-256, by user id, expiring) --json" run 0 machine key add "${C[@]}" --user "$plain_id" --public-key-file "$WORK/ec.pub" --expires 2099-12-31T23:59:59Z --json
expect "...key id, ES256, the expiry" jqe '(.key_id|test("^[0-9]{18}$")) and .alg=="ES256" and .expires_at==4102444799' "$out"
eckid=$(jq -r .key_id "$out")
expect "a private key file is refused (1)" run 1 machine key add "${C[@]}" --user svc-plain --public-key-file "$WORK/m.key"
expect "...one line with the openssl hint, no key material" bash -c "[ \$(wc -l <'$err') = 1 ] && grep -q 'pubout' '$err' && ! grep -q 'BEGIN' '$err'"
expect "a P-384 key is refused" run 1 machine key add "${C[@]}" --user svc-plain --public-key-file "$WORK/p384.pub"
expect "an RSA-1024 key is refused" run 1 machine key add "${C[@]}" --user svc-plain --public-key-file "$WORK/rsa1024.pub"
expect "an Ed25519 key is refused" run 1 machine key add "${C[@]}" --user svc-plain --public-key-file "$WORK/ed.pub"
expect "a missing file is refused" run 1 machine key add "${C[@]}" --user svc-plain --public-key-file "$WORK/nope.pub"
expect "...one line" one_line_err
expect "machine key list --json: the two keys" bash -c "'$BIN' machine key list --config '$conf' --user svc-plain --json | jq -e 'length==2 and ([.[].key_id]|sort)==([\"$kid\",\"$eckid\"]|sort)' >/dev/null"
expect "machine key remove" run 0 machine key remove "${C[@]}" --user svc-plain --key-id "$eckid"
expect "...it is gone" bash -c "'$BIN' machine key list --config '$conf' --user svc-plain | grep -c . | grep -qx 1"
expect "removing it again exits 1" run 1 machine key remove "${C[@]}" --user svc-plain --key-id "$eckid"
expect "...one line" one_line_err

# ---- projects, roles, grants ----
expect "project add exits 0 and prints the id" run 0 project add "${C[@]}" --name shop --role-assertion --role-check
expect "...an 18-digit id" grep -Eqx '[0-9]{18}' "$out"
proj=$(cat "$out")
expect "project list --json: default and shop, flags as given" bash -c "'$BIN' project list --config '$conf' --json | jq -e 'length==2 and (map(select(.project_id==\"$proj\"))[0] | .name==\"shop\" and .role_assertion and .role_check and (.has_project_check|not))' >/dev/null"
expect "project list (text)" bash -c "'$BIN' project list --config '$conf' | grep -P '^$proj\t[0-9]{18}\trole-assertion,role-check\tshop$' >/dev/null"
expect "project add --org of a missing org exits 1" run 1 project add "${C[@]}" --name x --org 42
expect "role add" run 0 role add "${C[@]}" --project "$proj" --key admin --display-name "Administrator" --group staff
expect "role add (second)" run 0 role add "${C[@]}" --project "$proj" --key reader
expect "the same role again exits 1" run 1 role add "${C[@]}" --project "$proj" --key admin
expect "...one line" one_line_err
expect "role add on a missing project exits 1" run 1 role add "${C[@]}" --project 999 --key admin
expect "role list --json" bash -c "'$BIN' role list --config '$conf' --project '$proj' --json | jq -e '.==[{\"key\":\"admin\",\"display_name\":\"Administrator\",\"group\":\"staff\",\"source\":\"v2\"},{\"key\":\"reader\",\"display_name\":\"\",\"group\":\"\",\"source\":\"v2\"}]' >/dev/null"
expect "grant add of a role the project lacks exits 1" run 1 grant add "${C[@]}" --user svc-api --project "$proj" --role owner
expect "...naming it" err_has "no role 'owner'"
expect "grant add (machine user by name)" run 0 grant add "${C[@]}" --user svc-api --project "$proj" --role admin --json
expect "...grant id and roles" jqe '(.grant_id|test("^[0-9]{18}$")) and .roles==["admin"]' "$out"
grant=$(jq -r .grant_id "$out")
expect "grant add again adds to the same grant" run 0 grant add "${C[@]}" --user "$m_id" --project "$proj" --role reader --role admin
expect "...same id" grep -qx "$grant" "$out"
expect "grant list --json: one grant, both roles" bash -c "'$BIN' grant list --config '$conf' --user svc-api --json | jq -e 'length==1 and .[0].grant_id==\"$grant\" and .[0].roles==[\"admin\",\"reader\"] and .[0].project_id==\"$proj\"' >/dev/null"
expect "grant add for a human" run 0 grant add "${C[@]}" --user ada --project "$proj" --role reader
expect "grant remove --role" run 0 grant remove "${C[@]}" --user ada --project "$proj" --role reader
expect "...leaves an empty grant" bash -c "'$BIN' grant list --config '$conf' --user ada --json | jq -e 'length==1 and .[0].roles==[]' >/dev/null"
expect "grant remove (all)" run 0 grant remove "${C[@]}" --user ada --project "$proj"
expect "...no grant left" bash -c "'$BIN' grant list --config '$conf' --user ada --json | jq -e '.==[]' >/dev/null"
expect "grant remove with nothing to remove exits 1" run 1 grant remove "${C[@]}" --user ada --project "$proj"

# ---- API apps ----
expect "api add (basic) --json" run 0 api add "${C[@]}" --name "Orders API" --project "$proj" --json
expect "...client id, project, a 64-char secret" jqe "(.client_id|test(\"^[0-9]{18}\$\")) and .project_id==\"$proj\" and (.client_secret|test(\"^[A-Za-z0-9]{64}\$\")) and (has(\"key_id\")|not)" "$out"
api_id=$(jq -r .client_id "$out")
api_secret=$(jq -r .client_secret "$out")
expect "api add (private_key_jwt, text)" run 0 api add "${C[@]}" --name "Stock API" --project "$proj" --auth-method private_key_jwt --public-key-file "$WORK/ec.pub" --client-id stock-api
expect "...client_id and key_id, no secret" bash -c "grep -qx 'client_id: stock-api' '$out' && grep -Eq '^key_id: [0-9]{18}$' '$out' && ! grep -q secret '$out'"
api_kid=$(sed -n 's/^key_id: //p' "$out")
expect "an existing client id exits 1" run 1 api add "${C[@]}" --name again --client-id stock-api
expect "client show shows an API app" bash -c "'$BIN' client show --config '$conf' '$api_id' --json | jq -e '.kind==\"api\" and .auth_method==\"basic\" and .has_secret and .project_id==\"$proj\"' >/dev/null"
expect "client list types API apps as api" bash -c "'$BIN' client list --config '$conf' | grep -P '^stock-api\tapi\tprivate_key_jwt\tStock API$' >/dev/null"

# ---- "--" ends the options everywhere ----
expect "export -- FILE" run 0 export "${C[@]}" -- "$WORK/b1.bak"
expect "...wrote FILE" test -s "$WORK/b1.bak"
expect "export -- --odd-name writes a file of that name" run 0 export "${C[@]}" -- --odd-name
expect "...in the current folder" test -s "$WORK/--odd-name"
expect "check --" run 0 check "${C[@]}" --
expect "check -- ARG exits 2" usage_err check "${C[@]}" -- extra
expect "machine list -- ARG exits 2 naming it" usage_err machine list "${C[@]}" -- --json
expect "client show -- ID" run 0 client show "${C[@]}" -- stock-api
expect "--help after -- is an argument, not help" usage_err machine list "${C[@]}" -- --help

# ---- an imported store (orgs, no default): the hint names the command's own flag ----
# The backup without meta/default is what import-zitadel leaves: orgs and projects from v1.
/usr/bin/python3 - "$WORK/b1.bak" "$WORK/imported.bak" <<'PY'
import hashlib, struct, sys
d = open(sys.argv[1], 'rb').read()
head_end = d.index(b'\n', d.index(b'\n') + 1) + 1
out, p, n = [d[:head_end]], head_end, 0
while d[p:p+1] == b'E':
    kl, vl = struct.unpack('>HI', d[p+1:p+7])
    end = p + 23 + kl + vl
    if d[p+23:p+23+kl] != b'meta/default':
        out.append(d[p:end]); n += 1
    p = end
body = b''.join(out) + b'Z' + struct.pack('>Q', n)
open(sys.argv[2], 'wb').write(body + hashlib.sha256(body).digest())
PY
write_config_at "$WORK/imp" "$WORK/imp.conf" "password.yescrypt_cost = 3" # a second store
mkdir -p "$WORK/imp"
expect "the imported-like store restores" run 0 import-backup --config "$WORK/imp.conf" "$WORK/imported.bak"
expect "user add without --org: exit 1, the hint says --org (user add has no --project)" bash -c "! printf 'pw\n' | '$BIN' user add --config '$WORK/imp.conf' --username u2 --email u2@example.com --password-stdin >'$out' 2>'$err' && [ \$(wc -l <'$err') = 1 ] && grep -q 'give --org ID' '$err' && ! grep -q -- '--project' '$err'"
expect "client add without --project: the hint says --project" bash -c "! '$BIN' client add --config '$WORK/imp.conf' --name c --type web --redirect-uri https://a/cb >'$out' 2>'$err' && grep -q 'give --project ID' '$err' && ! grep -q -- '--org' '$err'"
expect "machine add without --org: the hint says --org" bash -c "! '$BIN' machine add --config '$WORK/imp.conf' --username m2 >'$out' 2>'$err' && grep -q 'give --org ID' '$err'"
org=$("$BIN" project list --config "$WORK/imp.conf" --json | jq -r '.[0].org_id')
expect "machine add --org ORG works there" run 0 machine add --config "$WORK/imp.conf" --username m2 --org "$org"
expect "api add --project works there" run 0 api add --config "$WORK/imp.conf" --name a2 --project "$proj"

# ---- end to end: serve, then the token endpoint and introspection ----
start_server "$conf"
TOKEN=$BASE/oauth/v2/token
INTROSPECT=$BASE/oauth/v2/introspect
ISSUER=http://127.0.0.1:18190
post() { curl -sS -o "$out" -w '%{http_code}' "$@"; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
# jwt KEYFILE KID ISS SUB AUD: an RS256 JWS signed by openssl
jwt() {
  local now h c
  now=$(date +%s)
  h=$(printf '{"alg":"RS256","typ":"JWT","kid":"%s"}' "$2" | b64url)
  c=$(printf '{"iss":"%s","sub":"%s","aud":"%s","iat":%d,"exp":%d,"jti":"%s"}' "$3" "$4" "$5" \
    "$now" $((now + 60)) "$(openssl rand -hex 12)" | b64url)
  printf '%s.%s.%s' "$h" "$c" "$(printf '%s.%s' "$h" "$c" | openssl dgst -sha256 -sign "$1" -binary | b64url)"
}

expect "client_credentials with the CLI's secret: 200" bash -c "[ \$(curl -sS -o '$out' -w '%{http_code}' -u 'svc-api:$m_secret' -d grant_type=client_credentials '$TOKEN') = 200 ]"
expect "...an opaque access token, no ID token" jqe '(.access_token|length>20) and (.access_token|test("\\.")|not) and (has("id_token")|not) and .token_type=="Bearer"' "$out"
opaque=$(jq -r .access_token "$out")
expect "client_credentials (jwt user, secret in the body): a JWT access token for its id" bash -c "
  [ \$(curl -sS -o '$out' -w '%{http_code}' -d grant_type=client_credentials -d client_id=svc-jwt --data-urlencode 'client_secret=$jwt_secret' '$TOKEN') = 200 ] &&
  jq -r .access_token '$out' | cut -d. -f2 | tr '_-' '/+' | base64 -d 2>/dev/null | grep -q '\"sub\":\"$jwt_id\"'"
expect "a wrong secret: 401 invalid_client" bash -c "[ \$(curl -sS -o '$out' -w '%{http_code}' -u 'svc-api:wrong' -d grant_type=client_credentials '$TOKEN') = 401 ] && jq -e '.error==\"invalid_client\"' '$out' >/dev/null"
assertion=$(jwt "$WORK/m.key" "$kid" "$plain_id" "$plain_id" "$ISSUER")
expect "jwt-bearer with the key registered by the CLI: 200" bash -c "[ \$(curl -sS -o '$out' -w '%{http_code}' -d grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer --data-urlencode 'assertion=$assertion' '$TOKEN') = 200 ] && jq -e '.access_token|length>20' '$out' >/dev/null"
other=$(jwt "$WORK/m.key" "$eckid" "$plain_id" "$plain_id" "$ISSUER")
expect "jwt-bearer with the removed key's id: 400 invalid_grant" bash -c "[ \$(curl -sS -o '$out' -w '%{http_code}' -d grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer --data-urlencode 'assertion=$other' '$TOKEN') = 400 ] && jq -e '.error==\"invalid_grant\"' '$out' >/dev/null"

expect "a token for the project's audience, with its roles requested" bash -c "[ \$(curl -sS -o '$out' -w '%{http_code}' -u 'svc-api:$m_secret' -d grant_type=client_credentials --data-urlencode 'scope=openid urn:zitadel:iam:org:project:id:$proj:aud urn:zitadel:iam:org:project:roles' '$TOKEN') = 200 ]"
aud_token=$(jq -r .access_token "$out")
expect "a token for another audience is not active for the API app" bash -c "[ \$(curl -sS -o '$out' -w '%{http_code}' -u '$api_id:$api_secret' --data-urlencode 'token=$opaque' '$INTROSPECT') = 200 ] && jq -e '.active==false' '$out' >/dev/null"
opaque=$aud_token
expect "the API app introspects with its CLI secret" bash -c "[ \$(curl -sS -o '$out' -w '%{http_code}' -u '$api_id:$api_secret' --data-urlencode 'token=$opaque' '$INTROSPECT') = 200 ] && jq -e '.active==true and .sub==\"$m_id\" and .client_id==\"svc-api\"' '$out' >/dev/null"
expect "a wrong API secret: 401" bash -c "[ \$(curl -sS -o /dev/null -w '%{http_code}' -u '$api_id:nope' --data-urlencode 'token=$opaque' '$INTROSPECT') = 401 ]"
# private_key_jwt: the EC key is the API app's. openssl writes ES256 signatures as DER, JWS
# wants r||s: node's crypto signs this one (node is what scripts/deps.sh installs for tests).
wrong_key=$(jwt "$WORK/m.key" "$api_kid" stock-api stock-api "$ISSUER") # kid of the EC key, RSA-signed
expect "private_key_jwt signed by another key than the kid's: 401" bash -c "[ \$(curl -sS -o /dev/null -w '%{http_code}' -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer --data-urlencode 'client_assertion=$wrong_key' --data-urlencode 'token=$opaque' '$INTROSPECT') = 401 ]"
es_sign='
    const c = require("crypto"), fs = require("fs");
    const [key, kid, iss, aud] = process.argv.slice(1);
    const b = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    const input = b({ alg: "ES256", kid }) + "." + b({ iss, sub: iss, aud, iat: now, exp: now + 60, jti: c.randomUUID() });
    const sig = c.sign("sha256", Buffer.from(input), { key: fs.readFileSync(key), dsaEncoding: "ieee-p1363" });
    process.stdout.write(input + "." + sig.toString("base64url"));'
es=$(node -e "$es_sign" "$WORK/ec.key" "$api_kid" stock-api "$ISSUER")
expect "private_key_jwt (ES256) with the key registered by api add introspects" bash -c "[ \$(curl -sS -o '$out' -w '%{http_code}' -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer --data-urlencode 'client_assertion=$es' --data-urlencode 'token=$opaque' '$INTROSPECT') = 200 ] && jq -e '.active==true' '$out' >/dev/null"

# api key: a rotation while serve runs (an RSA key added, the EC one removed)
expect "api key add on a basic app exits 1" run 1 api key add "${C[@]}" --client-id "$api_id" --public-key-file "$WORK/m.pub"
expect "...one line saying why" bash -c "[ \$(wc -l <'$err') = 1 ] && grep -q 'private_key_jwt' '$err'"
expect "api key add (RSA) --json" run 0 api key add "${C[@]}" --client-id stock-api --public-key-file "$WORK/m.pub" --json
expect "...key id, client id, RS256" jqe '(.key_id|test("^[0-9]{18}$")) and .client_id=="stock-api" and .alg=="RS256" and .expires_at==0' "$out"
api_kid2=$(jq -r .key_id "$out")
expect "api key list: both keys" bash -c "'$BIN' api key list --config '$conf' --client-id stock-api | cut -f1 | sort | tr '\n' ' ' | grep -qx \"\$(printf '%s\n' $api_kid $api_kid2 | sort | tr '\n' ' ')\""
rsa_assertion=$(jwt "$WORK/m.key" "$api_kid2" stock-api stock-api "$ISSUER")
expect "private_key_jwt with the new RSA key introspects" bash -c "[ \$(curl -sS -o '$out' -w '%{http_code}' -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer --data-urlencode 'client_assertion=$rsa_assertion' --data-urlencode 'token=$opaque' '$INTROSPECT') = 200 ] && jq -e '.active==true' '$out' >/dev/null"
expect "api key remove (the EC key)" run 0 api key remove "${C[@]}" --client-id stock-api --key-id "$api_kid"
es2=$(node -e "$es_sign" "$WORK/ec.key" "$api_kid" stock-api "$ISSUER")
expect "...an assertion signed by the removed key is refused at once (401)" bash -c "[ \$(curl -sS -o /dev/null -w '%{http_code}' -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer --data-urlencode 'client_assertion=$es2' --data-urlencode 'token=$opaque' '$INTROSPECT') = 401 ]"
expect "api key remove of an unknown key exits 1" run 1 api key remove "${C[@]}" --client-id stock-api --key-id "$api_kid"
expect "api key list of an unknown client exits 1" run 1 api key list "${C[@]}" --client-id nope
expect "...one line" one_line_err

# machine secret while serve runs: the old secret stops at once, the new one works
expect "machine secret --json" run 0 machine secret "${C[@]}" --user svc-api --json
expect "...a new 64-char secret for the same user" jqe ".user_id==\"$m_id\" and .client_id==\"svc-api\" and (.client_secret|test(\"^[A-Za-z0-9]{64}\$\")) and .client_secret!=\"$m_secret\"" "$out"
new_secret=$(jq -r .client_secret "$out")
expect "the old secret is refused at once (it was verified and cached before)" bash -c "[ \$(curl -sS -o /dev/null -w '%{http_code}' -u 'svc-api:$m_secret' -d grant_type=client_credentials '$TOKEN') = 401 ]"
expect "the new secret works" bash -c "[ \$(curl -sS -o /dev/null -w '%{http_code}' -u 'svc-api:$new_secret' -d grant_type=client_credentials '$TOKEN') = 200 ]"

expect "serve stops cleanly (exit 0)" stop_server
expect "no sanitizer report in the server log" bash -c "! grep -qE 'runtime error:|Sanitizer' '$LOG'"
expect "no secret in the server log" bash -c "! grep -qE '$m_secret|$new_secret|$jwt_secret|$api_secret' '$LOG'"
expect "no secret stored in clear" bash -c "! grep -rqaE '$m_secret|$new_secret|$api_secret' '$WORK/data' '$WORK/b1.bak'"

finish
