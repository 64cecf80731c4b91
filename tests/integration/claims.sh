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

bail() { echo "Bail out! $*"; exit 1; }
gw_need_rp
gw_inventory "$1" "$2"
fx=$GW_FX
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

gw_seed project $platform 1 1 0 - || bail "seed project platform"
gw_seed project $bull 0 0 1 - || bail "seed project bull"
gw_seed project $ai 0 1 0 - || bail "seed project ai"
gw_seed project $cloud 0 0 1 250000000099999999 || bail "seed project cloud"
gw_start || bail "serve did not start on the imported store"

gw_node_tap "$here/claims.mjs" ISSUER="$GW_ISSUER" SECRETS="$fx/secrets.json" SUB="$sub" \
  ORG="$org_json" PLATFORM="$platform" BULL="$bull" AUD_PLATFORM="$(audience_of $platform)" \
  AUD_BULL="$(audience_of $bull)" ROLES_PLATFORM="$(roles_of $platform)" LIFETIMES="$lifetimes"
denied_logged() { grep -q 'sign-in denied: Login not possible' "$GW_TMP/serve.log"; }
gw_check "the refusals are logged with v1's reason" denied_logged
gw_tap_end
