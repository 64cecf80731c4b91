#!/usr/bin/env bash
# Integration test of `import-zitadel` against a real PostgreSQL 15 loaded with v1's dumps
# (../shared/fixtures/zitadel). TAP output. Args: GATEWAY STORE_DUMP.
# Every store is read back with STORE_DUMP through its config, so the test runs on LMDB and,
# under tests/kdbnext/run.sh --gateway-env, on kdb-next with a tenant per data dir
# (tests/lib/stores.sh).
set -uo pipefail

gw=$1
dump=$2
here=$(cd "$(dirname "$0")" && pwd)
src=${KODER_SRC:-$(cd "$here/../.." && pwd)}
fx=${KODER_FIXTURES:-$src/../shared/fixtures/zitadel}
pg=$here/pg.sh
py=/usr/bin/python3
source "$here/../lib/stores.sh"
store_conf_own_tenant

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { # description, command...
  local d=$1; shift
  if "$@" >"$tmp/check.out" 2>&1; then ok "$d"; else not_ok "$d"; sed 's/^/# /' "$tmp/check.out"; fi
}

expect() { # description, condition (evaluated here, so it sees this script's variables)
  if eval "$2"; then ok "$1"; else not_ok "$1"; sed 's/^/# /' "$tmp/err" 2>/dev/null | head -5; fi
}

tmp=$(mktemp -d)
pgdir=""
cleanup() {
  [ -n "$pgdir" ] && "$pg" stop "$pgdir"
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ ! -f "$fx/koder-inventory.sql" ]; then
  echo "1..1"; echo "not ok 1 - fixtures not found in $fx"; exit 1
fi
pgdir=$("$pg" start) || { echo "1..1"; echo "not ok 1 - cannot start PostgreSQL"; exit 1; }
for db in inv fresh unknown stale multi; do
  f=$fx/koder-inventory.sql
  [ $db = fresh ] && f=$fx/fresh-instance.sql
  "$pg" load "$pgdir" $db "$f" || { echo "1..1"; echo "not ok 1 - cannot load $f"; exit 1; }
done
dsn() { "$pg" dsn "$pgdir" "$1"; }
sql() { local db=$1; shift; "$pg" psql "$pgdir" "$db" -qAt -c "$*"; }

conf() { # name -> config file with its own data dir (and store)
  mkdir -p "$tmp/$1"
  { store_conf "$tmp/$1/data"; echo "master_key_file = $tmp/$1/master.key"; } >"$tmp/$1/gw.conf"
  echo "$tmp/$1/gw.conf"
}
imp() { # config, args... -> stdout in $tmp/out, stderr in $tmp/err, returns exit status
  local c=$1; shift
  "$gw" import-zitadel --config "$c" "$@" >"$tmp/out" 2>"$tmp/err"
}
# The store of a config, every byte and version (two stores holding the same print the same).
snap() { "$dump" --config "$1" raw; }
# The store as JSON lines without versions (content only).
content() { "$dump" --config "$1" | "$py" -c 'import json,sys
for l in sys.stdin:
    o=json.loads(l); o.pop("version",None); print(json.dumps(o,sort_keys=True))'; }
jq_report() { "$py" -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$3"; }

secrets=$fx/secrets.json
C=$(conf main)
D=$tmp/main/data

# ---- dry run on an empty store ----
imp "$C" --dsn "$(dsn inv)" --dry-run
st=$?
check "dry run on an empty store exits 0" test $st = 0
check "dry run leaves no store behind" store_empty "$gw" "$C" "$D"
check "dry run plans 65 client creations" test "$(grep -c '^plan create    client' "$tmp/out")" = 65

# ---- import the Koder inventory ----
pgdump() { pg_dump -X -h "$pgdir/sock" -p "$(cat "$pgdir/port")" -U postgres -d "$1" 2>&1; }
pgdump inv >"$tmp/pg1.sql"
imp "$C" --dsn "$(dsn inv)" --report "$tmp/r1.json"
st=$?
pgdump inv >"$tmp/pg2.sql"
check "v1's database is not modified by the import (pg_dump before = after)" cmp "$tmp/pg1.sql" "$tmp/pg2.sql"
check "import exits 0" test $st = 0
"$dump" --config "$C" >"$tmp/d1.jsonl"
check "report: 62 OIDC and 3 API clients, complete" test \
  "$(jq_report x 'r["summary"]["oidc_clients"], r["summary"]["api_clients"], r["complete"]' "$tmp/r1.json")" = "62 3 True"
check "store: 62 OIDC and 3 API client records" "$py" -c '
import json,sys
k=[0,0]
for l in open(sys.argv[1]):
    o=json.loads(l)
    if o["key"].startswith("client/"): k[o["record"]["kind"]]+=1
assert k==[62,3], k' "$tmp/d1.jsonl"
check "every client_id in secrets.json is identical in the store" "$py" -c '
import json,sys
s=json.load(open(sys.argv[1]))["clients"]
recs={}
for l in open(sys.argv[2]):
    o=json.loads(l)
    if o["key"].startswith("client/"): recs[o["key"][7:]]=o["record"]
for cid in s:
    assert cid in recs, cid
    assert recs[cid]["client_id"]==cid, cid
print(len(s))' "$secrets" "$tmp/d1.jsonl"
check "OIDC app fields: URIs, types, flags, clock skew, back-channel logout" "$py" -c '
import json,sys
r={}
for l in open(sys.argv[1]):
    o=json.loads(l)
    if o["key"].startswith("client/"): r[o["key"][7:]]=o["record"]
c=r["250000000080498240@koder_bull"]
assert c["redirect_uris"]==["https://koder-bull-web.koder.dev/auth/callback","https://koder-bull-web.koder.dev/auth/callback/"]
assert c["post_logout_redirect_uris"]==["https://koder-bull-web.koder.dev/"]
assert c["grant_types"]==[0,2] and c["response_types"]==[0] and c["app_type"]==0 and c["auth_method"]==0
assert c["clock_skew_ms"]==2000 and c["id_token_userinfo_assertion"] is True
assert c["back_channel_logout_uri"]=="https://koder-bull-web.koder.dev/auth/backchannel-logout"
assert c["secret_hash"].startswith("$2a$14$") and c["state"]==1 and c["source"]=="zitadel"
assert c["project_id"]=="250000000069628542" and c["org_id"]=="250000000008094913"
s=r["250000000124383695@koder_ai"]; assert s["access_token_type"]==1 and s["access_token_role_assertion"] is True
p=r["250000000141821980"]; assert p["dev_mode"] is True and "http://localhost:*/callback" in p["redirect_uris"] and p["secret_hash"]==""
i=r["250000000553354589"]; assert i["response_types"]==[1,2] and i["grant_types"]==[1]
a=r["250000000091973509"]; assert a["additional_origins"]==["https://app.ai-chat.koder.dev"] and a["auth_method"]==2
v=r["250000000251651078"]; assert v["auth_method"]==3
m=r["250000000024786503@zitadel"]; assert m["kind"]==1 and m["auth_method"]==0 and m["secret_hash"].startswith("$2a$04$")
con=r["250000000016940950@zitadel"]; assert con["back_channel_logout_uri"]=="" and con["secret_hash"]==""
' "$tmp/d1.jsonl"
check "users keep their v1 ids, login names and fields" "$py" -c '
import json,sys
r={}
for l in open(sys.argv[1]):
    o=json.loads(l); r[o["key"]]=o.get("record",o.get("raw"))
u=r["user/250000000593828015"]
assert u["username"]=="root" and u["login_name"]=="root@koder-id.id.koder.dev", u
assert u["login_names"]==["root@koder-id.id.koder.dev"]
assert u["email"]=="root@koder-id.id.koder.dev" and u["email_verified"] is True and u["type"]==1 and u["state"]==1
assert u["first_name"]=="Root" and u["display_name"]=="Root Admin" and u["preferred_language"]=="en"
assert u["password_hash"].startswith("$2a$14$s0qRobf7Cl4hshOe") and u["v1_password_hash"]==u["password_hash"]
m=r["user/250000000600618599"]
assert m["type"]==2 and m["access_token_type"]==1 and m["secret_hash"].startswith("$2a$04$") and m["machine_name"]=="platform-admin"
assert r["login/root@koder-id.id.koder.dev"]=="250000000593828015"
assert r["login/platform-admin@koder-id.id.koder.dev"]=="250000000600618599"
g=r["grant/250000000593828015/250000000608074760"]; assert g["roles"]==["admin","viewer"] and g["project_id"]=="250000000066288999"
assert r["role/250000000066288999/editor"]["display_name"]=="Editor"
p=r["project/250000000066288999"]; assert p["project_role_assertion"] is True and p["name"]=="Koder Platform"
o=r["org/250000000008094913"]; assert o["must_be_domain"] is True and o["primary_domain"]=="koder-id.id.koder.dev"
k=r["authnkey/250000000251651078/250000000259032364"]; assert k["object_type"]==0 and k["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
s=r["settings/oidc"]; assert [s["access_token_lifetime"],s["id_token_lifetime"],s["refresh_token_idle_expiration"],s["refresh_token_expiration"]]==[43200,43200,2592000,7776000]
sk=r["sigkey/250000000044582279"]; assert sk["publish_until"]==4070908800 and sk["private_enc"]=="" and sk["alg"]=="RS256" and sk["source"]=="zitadel"
assert "sigkey/250000000048385657" not in r
' "$tmp/d1.jsonl"
pw=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["users"]["root"]["password"])' "$secrets")
oldpw=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["users"]["root"]["old_password_must_fail"])' "$secrets")
check "root's current password verifies against the imported hash (crypt_rn)" \
  sh -c 'printf "%s\n" "$1" | "$2" --config "$3" check-password 250000000593828015' _ "$pw" "$dump" "$C"
check "root's old password does not" \
  sh -c '! printf "%s\n" "$1" | "$2" --config "$3" check-password 250000000593828015' _ "$oldpw" "$dump" "$C"
check "platform-admin's secret verifies" sh -c '"$1" -c "import json,sys; print(json.load(open(sys.argv[1]))[\"machines\"][\"platform-admin\"][\"secret\"])" "$2" | "$3" --config "$4" check-machine 250000000600618599' _ "$py" "$secrets" "$dump" "$C"
check "every client secret in secrets.json verifies against its imported hash; a wrong one does not" "$py" -c '
import json,subprocess,sys
s=json.load(open(sys.argv[1]))["clients"]
n=0
for cid,sec in s.items():
    if not isinstance(sec,str): continue
    r=subprocess.run([sys.argv[2],"--config",sys.argv[3],"check-secret",cid],input=sec+"\n",text=True)
    assert r.returncode==0, cid
    n+=1
r=subprocess.run([sys.argv[2],"--config",sys.argv[3],"check-secret","250000000173052295"],input="wrong\n",text=True)
assert r.returncode==1
print(n)' "$secrets" "$dump" "$C"
check "report names the personal access token to re-issue, with user and expiry" "$py" -c '
import json,sys
r=json.load(open(sys.argv[1]))
p=[s for s in r["skipped"] if s["kind"]=="personal_access_token"]
assert len(p)==1 and p[0]["id"]=="250000000602974639" and p[0]["user_id"]=="250000000600618599", p
assert p[0]["expires"]=="2027-06-30T00:00:00Z" and p[0]["login_name"]=="platform-admin@koder-id.id.koder.dev"
assert any(s["kind"]=="signing_key" and s["id"]=="250000000048385657" for s in r["skipped"])
assert r["tables"]["stale"]==[] and "projections.users14" in r["tables"]["used"]
assert r["counts"]["client"]["create"]==65' "$tmp/r1.json"

# ---- re-import: nothing changes ----
snap "$C" >"$tmp/m1"
imp "$C" --dsn "$(dsn inv)" --report "$tmp/r2.json"
st=$?
snap "$C" >"$tmp/m2"
check "re-import exits 0" test $st = 0
check "re-import leaves a byte-identical store (every value and version)" cmp "$tmp/m1" "$tmp/m2"
check "re-import plans everything unchanged" test \
  "$(jq_report x 'r["counts"]["client"]["unchanged"], r["counts"]["user"]["unchanged"], sum(v["create"]+v["update"]+v["delete"] for v in r["counts"].values())' "$tmp/r2.json")" = "65 2 0"

# ---- dry run after changes in v1 writes nothing, then the import applies them ----
sql inv "UPDATE projections.apps7_oidc_configs SET redirect_uris = ARRAY['https://box.koder.dev/auth/callback','https://box.koder.dev/new-cb']::text[] WHERE client_id = '250000000153580795@koder_cloud'"
sql inv "UPDATE projections.apps7 SET state = 2 WHERE id = '250000000161596356'"
sql inv "DELETE FROM projections.apps7 WHERE id = '250000000172570107'"
sql inv "UPDATE projections.users14_humans SET display_name = 'Root The Admin' WHERE user_id = '250000000593828015'"
imp "$C" --dsn "$(dsn inv)" --dry-run
st=$?
snap "$C" >"$tmp/m3"
expect "dry run after v1 changes exits 0 and writes nothing" '[ $st = 0 ] && cmp -s "$tmp/m1" "$tmp/m3"'
expect "dry run plans the updates, the deletion and the unchanged" '
  grep -q "^plan update    client      250000000153580795@koder_cloud" "$tmp/out" &&
  grep -q "^plan update    client      250000000165892997@koder_cloud" "$tmp/out" &&
  grep -q "^plan delete    client      250000000173052295\$" "$tmp/out" &&
  grep -q "^plan update    user        250000000593828015" "$tmp/out" &&
  grep -q "^plan unchanged client      250000000182234696@koder_cloud" "$tmp/out"'

imp "$C" --dsn "$(dsn inv)"
st=$?
"$dump" --config "$C" >"$tmp/d2.jsonl"
check "second import applies the changes (redirects, inactive app disabled, deleted app gone)" "$py" -c '
import json,sys
r={}
for l in open(sys.argv[1]):
    o=json.loads(l); r[o["key"]]=o.get("record",o.get("raw"))
assert r["client/250000000153580795@koder_cloud"]["redirect_uris"][1]=="https://box.koder.dev/new-cb"
assert r["client/250000000165892997@koder_cloud"]["state"]==2
assert "client/250000000173052295" not in r
assert not any(k.startswith("projclient/") and k.endswith("/250000000173052295") for k in r)
assert r["user/250000000593828015"]["display_name"]=="Root The Admin"
' "$tmp/d2.jsonl"

# ---- a password v2 upgraded is kept while v1's stays; a new v1 password wins ----
printf '%s\n' "$pw" | "$dump" --config "$C" set-password 250000000593828015
imp "$C" --dsn "$(dsn inv)"
expect "v2's upgraded hash survives a re-import while v1's hash is unchanged" '
  "$dump" --config "$C" | grep "\"key\":\"user/250000000593828015\"" | grep -F "\"password_hash\":\"\$y\$" >/dev/null &&
  printf "%s\n" "$pw" | "$dump" --config "$C" check-password 250000000593828015'

sql inv "INSERT INTO eventstore.events2 (instance_id, aggregate_type, aggregate_id, event_type, sequence, revision, created_at, payload, creator, owner, position, in_tx_order) VALUES ('250000000005498548', 'user', '250000000593828015', 'user.human.password.changed', 3, 1, '2024-03-03 09:00:00+00', '{\"encodedHash\": \"\$2a\$14\$DJo9xe5/BmmFzoSJARYQJe2vChsDqYKW/DlHJF4wz6XKtL20O0KWi\"}'::jsonb, 'test', '250000000008094913', 1700000003, 0)"
imp "$C" --dsn "$(dsn inv)"
expect "a newer v1 password event replaces it (old password works again, current does not)" '
  printf "%s\n" "$oldpw" | "$dump" --config "$C" check-password 250000000593828015 &&
  ! printf "%s\n" "$pw" | "$dump" --config "$C" check-password 250000000593828015'


# ---- records created in v2 are never touched ----
C2=$(conf v2rec)
"$gw" client add --config "$C2" --name "v2 app" --type web --redirect-uri https://x.example/cb \
  --client-id "250000000188710554@koder_cloud" --json >"$tmp/v2client.json" 2>"$tmp/err"
printf 'v2-password-1\n' | "$gw" user add --config "$C2" --username root --email root@v2.example \
  --password-stdin >"$tmp/v2user.id" 2>>"$tmp/err"
before=$("$dump" --config "$C2" | grep '"key":"client/250000000188710554@koder_cloud"')
imp "$C2" --dsn "$(dsn inv)" --report "$tmp/r3.json"
st=$?
after=$("$dump" --config "$C2" | grep '"key":"client/250000000188710554@koder_cloud"')
expect "a v2 client holding a v1 client_id is left untouched (exit 1, reported)" '
  [ $st = 1 ] && [ -n "$before" ] && [ "$before" = "$after" ] &&
  grep -q "skipped app 250000000188710554@koder_cloud: not written: a record created in v2" "$tmp/out"'
v2uid=$(cat "$tmp/v2user.id")
expect "a v1 user whose login name a v2 user holds is not written; the v2 user keeps it" '
  [ -n "$v2uid" ] &&
  grep -q "skipped user 250000000593828015: not written: login name .root. belongs to user $v2uid created in v2" "$tmp/out" &&
  grep -q "skipped grant 250000000608074760: not written: depends on user 250000000593828015" "$tmp/out" &&
  ! "$dump" --config "$C2" | grep "\"key\":\"user/250000000593828015\"" >/dev/null &&
  "$dump" --config "$C2" | grep "\"key\":\"login/root\",\"version\":[0-9]*,\"raw\":\"$v2uid\"" >/dev/null &&
  printf "v2-password-1\n" | "$dump" --config "$C2" check-password "$v2uid"'

# ---- unknown and stale table versions ----
sql unknown "ALTER TABLE projections.users14 RENAME TO users15; ALTER TABLE projections.users14_humans RENAME TO users15_humans; ALTER TABLE projections.users14_machines RENAME TO users15_machines"
snap "$C" >"$tmp/m4"
imp "$C" --dsn "$(dsn unknown)" --report "$tmp/r4.json"
st=$?
snap "$C" >"$tmp/m5"
expect "a table only in an unknown version stops before writing (exit 1, names it)" '
  [ $st = 1 ] && cmp -s "$tmp/m4" "$tmp/m5" &&
  grep -q "projections.users15 (supported: users14)" "$tmp/err" && [ $(wc -l <"$tmp/err") = 1 ] &&
  grep -q "projections.users15 (supported: users14)" "$tmp/r4.json"'
C4=$(conf stale)
sql stale "CREATE TABLE projections.users13 (LIKE projections.users14); CREATE TABLE projections.apps6 (LIKE projections.apps7)"
imp "$C4" --dsn "$(dsn stale)" --report "$tmp/r5.json"
st=$?
stale=$(jq_report x '" ".join(sorted(r["tables"]["stale"]))' "$tmp/r5.json")
expect "stale older versions are named in the report, the newest supported one is used" '
  [ $st = 0 ] && grep -q "stale tables" "$tmp/out" &&
  [ "$stale" = "projections.apps6 projections.users13" ]'

# ---- legacy and unverifiable password hashes (events on the stale copy) ----
legacy=$("$py" -c 'import base64; print(base64.b64encode(b"$2a$14$DJo9xe5/BmmFzoSJARYQJe2vChsDqYKW/DlHJF4wz6XKtL20O0KWi").decode())')
sql stale "INSERT INTO eventstore.events2 (instance_id, aggregate_type, aggregate_id, event_type, sequence, revision, created_at, payload, creator, owner, position, in_tx_order) VALUES ('250000000005498548', 'user', '250000000593828015', 'user.password.changed', 3, 1, '2024-03-03 09:00:00+00', '{\"secret\": {\"CryptoType\": 1, \"Algorithm\": \"bcrypt\", \"KeyID\": \"\", \"Crypted\": \"$legacy\"}}'::jsonb, 'test', '250000000008094913', 1700000003, 0)"
imp "$C4" --dsn "$(dsn stale)"
expect "a legacy CryptoValue password event (v1 user.password.changed) is imported as its bcrypt hash" '
  printf "%s\n" "$oldpw" | "$dump" --config "$C4" check-password 250000000593828015'
sql stale "INSERT INTO eventstore.events2 (instance_id, aggregate_type, aggregate_id, event_type, sequence, revision, created_at, payload, creator, owner, position, in_tx_order) VALUES ('250000000005498548', 'user', '250000000593828015', 'user.human.password.hash.updated', 4, 1, '2024-03-04 09:00:00+00', '{\"encodedHash\": \"\$argon2id\$v=19\$m=4096,t=3,p=1\$c2FsdHNhbHQ\$aGFzaGhhc2hoYXNoaGFzaA\"}'::jsonb, 'test', '250000000008094913', 1700000004, 0)"
imp "$C4" --dsn "$(dsn stale)" --report "$tmp/r7.json"
st=$?
expect "an argon2 hash is recognized, reported, and the user imported without it (exit 0)" '
  [ $st = 0 ] && grep -q "skipped password 250000000593828015 .*argon2 hash: v2 (libxcrypt) cannot verify it" "$tmp/out" &&
  "$dump" --config "$C4" | grep "\"key\":\"user/250000000593828015\"" | grep "\"password_hash\":\"\"" >/dev/null &&
  ! printf "%s\n" "$oldpw" | "$dump" --config "$C4" check-password 250000000593828015'

# ---- several instances ----
C5=$(conf multi)
sql multi "INSERT INTO projections.orgs1 SELECT id, creation_date, change_date, '999', '999', org_state, sequence, name, primary_domain FROM projections.orgs1"
imp "$C5" --dsn "$(dsn multi)"
st=$?
expect "several instances without --instance: usage error listing them" '
  [ $st = 2 ] && grep -q "250000000005498548, 999" "$tmp/err"'

imp "$C5" --dsn "$(dsn multi)" --instance 250000000005498548
check "--instance picks one" test $? = 0

# ---- an unreachable database ----
imp "$C5" --dsn "postgresql://postgres:Hunter2-Secret@/inv?host=$pgdir/sock&port=1"
st=$?
expect "unreachable database: exit 1, one line naming host and db, no password" '
  [ $st = 1 ] && [ $(wc -l <"$tmp/err") = 1 ] && grep -q "$pgdir/sock:1/inv" "$tmp/err" &&
  ! grep -q Hunter2 "$tmp/err" "$tmp/out"'

"$gw" import-zitadel --config "$C5" >/dev/null 2>&1
check "missing --dsn is a usage error" test $? = 2

# ---- the password comes from PGPASSWORD or a pgpass file, never the command line ----
sql multi "CREATE ROLE importer LOGIN PASSWORD 'Imp0rt-Secret-pw'; GRANT USAGE ON SCHEMA projections, eventstore TO importer; GRANT SELECT ON ALL TABLES IN SCHEMA projections, eventstore TO importer"
{ echo 'local all importer scram-sha-256'; cat "$pgdir/data/pg_hba.conf"; } >"$tmp/hba"
cat "$tmp/hba" >"$pgdir/data/pg_hba.conf" # keeps the file's owner (postgres)
sql multi "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
idsn="postgresql://importer@/multi?host=$pgdir/sock&port=$(cat "$pgdir/port")"
C9=$(conf pgpass)
imp "$C9" --dsn "$idsn" --instance 250000000005498548 --dry-run
st=$?
expect "without a password the connection is refused (exit 1, one line)" '
  [ $st = 1 ] && [ $(wc -l <"$tmp/err") = 1 ] && grep -q "password" "$tmp/err"'
PGPASSWORD=Imp0rt-Secret-pw "$gw" import-zitadel --config "$C9" --dsn "$idsn" \
  --instance 250000000005498548 --dry-run >"$tmp/out" 2>"$tmp/err"
check "PGPASSWORD supplies it" test $? = 0
printf '%s:%s:multi:importer:Imp0rt-Secret-pw\n' "$pgdir/sock" "$(cat "$pgdir/port")" >"$tmp/pgpass.txt"
chmod 600 "$tmp/pgpass.txt"
PGPASSFILE=$tmp/pgpass.txt "$gw" import-zitadel --config "$C9" --dsn "$idsn" \
  --instance 250000000005498548 --report "$tmp/r8.json" >"$tmp/out" 2>"$tmp/err"
st=$?
expect "a pgpass file supplies it; the password is in no output or report" '
  [ $st = 0 ] && ! grep -q Imp0rt "$tmp/out" "$tmp/err" "$tmp/r8.json"'

# ---- kill -9 half way, then run again ----
C6=$(conf crash)
KODER_TEST_IMPORT_KILL_AFTER=40 "$gw" import-zitadel --config "$C6" --dsn "$(dsn inv)" >/dev/null 2>&1
st=$?
n_half=$("$dump" --config "$C6" | grep -c '"key":"client/')
imp "$C6" --dsn "$(dsn inv)"
st2=$?
expect "an import killed half way completes when run again (exit 0)" '
  [ $st = 137 ] && [ $n_half -gt 0 ] && [ $n_half -lt 64 ] && [ $st2 = 0 ]'
# The main store has seen v1 changes since; compare against a clean import of the same input.
C7=$(conf clean)
imp "$C7" --dsn "$(dsn inv)"
check "after the re-run the crashed store holds exactly what a clean import writes" \
  cmp <(content "$C7") <(content "$C6")

# ---- the real Zitadel v4 dump ----
C8=$(conf fresh)
imp "$C8" --dsn "$(dsn fresh)" --report "$tmp/r6.json"
st=$?
check "fresh-instance.sql imports with exit 0" test $st = 0
check "its report names the personal access token (login-client, 2029-01-01)" "$py" -c '
import json,sys
r=json.load(open(sys.argv[1]))
p=[s for s in r["skipped"] if s["kind"]=="personal_access_token"]
assert len(p)==1 and p[0]["id"]=="338293185506377731" and p[0]["login_name"]=="login-client" and p[0]["expires"]=="2029-01-01T00:00:00Z", p
assert r["summary"]["oidc_clients"]==2 and r["summary"]["api_clients"]==3 and r["summary"]["users"]==3
assert r["not_carried"]["oidc_sessions"]==4' "$tmp/r6.json"
check "its admin's password Password1! verifies" \
  sh -c 'printf "Password1!\n" | "$1" --config "$2" check-password 338293185506246659' _ "$dump" "$C8"
check "fresh: '' secrets and logout URIs read as empty, API apps private_key_jwt" "$py" -c '
import json,sys
r={}
for l in open(sys.argv[1]):
    o=json.loads(l); r[o["key"]]=o.get("record",o.get("raw"))
c=r["client/338293453119029251"]; assert c["secret_hash"]=="" and c["back_channel_logout_uri"]=="" and c["auth_method"]==2 and c["login_version"]==1
a=r["client/338293186696839171"]; assert a["kind"]==1 and a["auth_method"]==3 and a["secret_hash"]==""
u=r["user/338293185506246659"]; assert u["login_name"]=="zitadel-admin@zitadel.localhost" and u["login_names"]==["zitadel-admin@zitadel.localhost"]
assert "sigkey/338293186697101315" not in r' <("$dump" --config "$C8")
# v1 active again: the active web key is published for the longest token lifetime + 1 h.
sql fresh "INSERT INTO eventstore.events2 (instance_id, aggregate_type, aggregate_id, event_type, sequence, revision, created_at, payload, creator, owner, position, in_tx_order) VALUES ('338293185505656835', 'oidc_session', 'test-session', 'oidc_session.added', 1, 1, now(), '{}'::jsonb, 'test', '338293185505722371', 1800000000, 0)"
imp "$C8" --dsn "$(dsn fresh)"
check "after recent v1 activity the active web key is imported as a public PEM until activity + 13 h" "$py" -c '
import json,sys,time
r={}
for l in open(sys.argv[1]):
    o=json.loads(l); r[o["key"]]=o.get("record",o.get("raw"))
k=r["sigkey/338293186697101315"]
assert k["public_pem"].startswith("-----BEGIN PUBLIC KEY-----") and k["alg"]=="RS256" and k["private_enc"]==""
assert abs(k["publish_until"]-(time.time()+13*3600))<120, k["publish_until"]
assert "sigkey/338293186797502467" not in r' <("$dump" --config "$C8")

# ---- password complexity policies (projections.password_complexity_policies2) ----
# fresh-instance.sql has the instance default only: min 8, all four classes (v1's default).
ZORG=338293185505722371
ZADMIN=338293185506246659
pwset() { # config, user, password -> `user password` output in $tmp/pw.out, exit status
  printf '%s\n' "$3" | "$gw" user password --config "$1" --user "$2" --password-stdin >"$tmp/pw.out" 2>&1
}
pwpol() { "$py" -c '
import json,sys
r={}
for l in sys.stdin:
    o=json.loads(l); r[o["key"]]=o.get("record")
p=r.get(sys.argv[1])
print("none" if p is None else "%s %d %s %s %s %s %s" % (p.get("org_id","") or "-", p.get("min_length",0), p.get("has_lowercase",False), p.get("has_uppercase",False), p.get("has_number",False), p.get("has_symbol",False), p.get("source","")))' "$1" < <("$dump" --config "$C8"); }
check "fresh: the instance default policy is imported as v1 has it (8, lower, upper, number, symbol)" \
  test "$(pwpol pwpolicy/default)" = "- 8 True True True True zitadel"
check "fresh: the report counts 1 password policy created" test \
  "$(jq_report x 'r["counts"]["password_policy"]["create"], r["counts"]["password_policy"]["v1"]' "$tmp/r6.json")" = "1 1"
pwset "$C8" $ZADMIN 'password1!'
st=$?
expect "user password: the imported policy refuses a password without an upper-case letter" \
  '[ $st = 1 ] && grep -q "^.*password: The password must contain an upper-case letter" "$tmp/pw.out"'
pwset "$C8" $ZADMIN 'Password2'
st=$?
expect "user password: ... and one without a symbol" '[ $st = 1 ] && grep -q "must contain a symbol" "$tmp/pw.out"'
pwset "$C8" $ZADMIN 'Pässword2!'
check "user password: a password meeting the default policy is set" test $? = 0
# An org's own policy overrides the default: 12 characters, no symbol required.
sql fresh "INSERT INTO projections.password_complexity_policies2 (id, creation_date, change_date, sequence, state, is_default, resource_owner, instance_id, min_length, has_lowercase, has_uppercase, has_symbol, has_number, owner_removed) VALUES ('$ZORG', now(), now(), 20, 1, false, '$ZORG', '338293185505656835', 12, true, true, false, true, false)"
imp "$C8" --dsn "$(dsn fresh)" --report "$tmp/r7.json"
st=$?
check "fresh + org policy: import exits 0, 1 policy created, the default unchanged" test \
  "$st $(jq_report x 'r["counts"]["password_policy"]["create"], r["counts"]["password_policy"]["unchanged"]' "$tmp/r7.json")" = "0 1 1"
check "the org's policy is stored under pwpolicy/org/<org id>" \
  test "$(pwpol pwpolicy/org/$ZORG)" = "$ZORG 12 True True True False zitadel"
pwset "$C8" $ZADMIN 'Password2!'
st=$?
expect "user password: the org's policy refuses 10 characters, naming the rule" \
  '[ $st = 1 ] && grep -q "at least 12 characters" "$tmp/pw.out"'
pwset "$C8" $ZADMIN 'Password2345'
check "user password: 12 characters without a symbol meet the org's policy" test $? = 0
imp "$C8" --dsn "$(dsn fresh)" # takes in the v2 password change (a user update)
snap "$C8" >"$tmp/p1"
imp "$C8" --dsn "$(dsn fresh)"
snap "$C8" >"$tmp/p2"
check "re-import with password policies leaves a byte-identical store" cmp "$tmp/p1" "$tmp/p2"
sql fresh "DELETE FROM projections.password_complexity_policies2 WHERE id = '$ZORG' AND NOT is_default"
imp "$C8" --dsn "$(dsn fresh)" --report "$tmp/r8.json"
check "an org policy removed in v1 is deleted by the next import" test \
  "$(pwpol pwpolicy/org/$ZORG) $(jq_report x 'r["counts"]["password_policy"]["delete"]' "$tmp/r8.json")" = "none 1"

echo "1..$n"
exit $((failed > 0))
