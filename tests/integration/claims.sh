#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# v1's claims and scopes on an imported store (issue 5): import the Koder inventory from a
# real PostgreSQL, start `serve`, and sign in as v1's root (who holds `admin` and `viewer` on
# Koder Platform) with openid-client through imported apps whose flags differ
# (claims.mjs): audience, role claims per project_role_assertion and the *_role_assertion
# flags, resource-owner and org claims, id_token_userinfo_assertion, preferred_username,
# lifetimes; then project_role_check and has_project_check refusing sign-in. The inventory has
# no project with those checks: grants_seed sets them (Koder AI: role check, root has no grant
# there; Koder Cloud: project check, owned by another org; Koder Platform and Koder Bull: the
# same checks, which root passes). TAP output. Usage: claims.sh GATEWAY GRANTS_SEED
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/gateway.sh"
src=${KODER_SRC:-$(cd "$here/../.." && pwd)}
fx=${KODER_FIXTURES:-$src/../shared/fixtures/zitadel}

bail() { echo "Bail out! $*"; exit 1; }
[ -d "$here/node_modules/openid-client" ] ||
  bail "openid-client missing in tests/integration: run scripts/deps.sh test"
command -v jq >/dev/null || bail "jq missing: run scripts/deps.sh test"
[ -f "$fx/koder-inventory.sql" ] || bail "fixtures not found in $fx"

gw_init "$1"
seed_bin=$(readlink -f "$2")
seed() { "$seed_bin" --config "$GW_CONF" "$@"; }
gw_import "$fx/koder-inventory.sql" inv || bail "cannot import the inventory"
sql() { "$here/pg.sh" psql "$GW_PGDIR" inv -At -c "$1"; }

platform=250000000066288999 ai=250000000056885049 cloud=250000000062481445 bull=250000000069628542
org=250000000008094913
sub=$(jq -r .users.root.id "$fx/secrets.json")
# What v1's tables say the claims must be, read from the same database.
audience_of() { # project id -> JSON array of its apps' client ids and the project id
  sql "select json_agg(c) from (select o.client_id c from projections.apps7 a
    join projections.apps7_oidc_configs o on o.app_id = a.id where a.project_id = '$1'
    union select p.client_id from projections.apps7 a
    join projections.apps7_api_configs p on p.app_id = a.id where a.project_id = '$1'
    union select '$1') s"
}
roles_of() { # project id -> {role: {org id: org primary domain}} of root's active grants
  sql "select coalesce(json_object_agg(r, json_build_object(g.resource_owner, o.primary_domain)),
    '{}') from projections.user_grants5 g cross join unnest(g.roles) r
    join projections.orgs1 o on o.id = g.resource_owner
    where g.user_id = '$sub' and g.project_id = '$1' and g.state = 1"
}
lifetimes=$(sql "select json_build_object('at', access_token_lifetime / 1000000000,
  'idt', id_token_lifetime / 1000000000) from projections.oidc_settings2")
org_json=$(sql "select json_build_object('id', id, 'name', name, 'domain', primary_domain)
  from projections.orgs1 where id = '$org'")

seed project $platform 1 1 0 - || bail "seed project platform"
seed project $bull 0 0 1 - || bail "seed project bull"
seed project $ai 0 1 0 - || bail "seed project ai"
seed project $cloud 0 0 1 250000000099999999 || bail "seed project cloud"
gw_start || bail "serve did not start on the imported store"

status=0
ISSUER="$GW_ISSUER" SECRETS="$fx/secrets.json" SUB="$sub" ORG="$org_json" \
  PLATFORM="$platform" BULL="$bull" \
  AUD_PLATFORM="$(audience_of $platform)" AUD_BULL="$(audience_of $bull)" \
  AUD_AI="$(audience_of $ai)" ROLES_PLATFORM="$(roles_of $platform)" \
  LIFETIMES="$lifetimes" \
  node "$here/claims.mjs" >"$GW_TMP/rp.tap" || status=1
cat "$GW_TMP/rp.tap"
n=$(grep -cE '^(not )?ok ' "$GW_TMP/rp.tap")
check() { # description, then a command
  local d=$1
  shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; status=1; fi
}
denied_logged() { grep -q 'sign-in denied: Login not possible' "$GW_TMP/serve.log"; }
check "the refusals are logged with v1's reason" denied_logged
check "the server is still serving" gw_alive
if [ $status -ne 0 ]; then
  echo "# server log:"
  gw_log_tail 40
fi
check "the server stops cleanly, no sanitizer report" gw_stop
echo "1..$n"
exit $status
