#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `user lock|unlock|deactivate|reactivate|remove` against the real binary: a fresh store seeded
# with the CLI (`user add`, `client add`, `api add`, `machine add`), `serve` on a free loopback
# port, then user_state.mjs runs each command between sign-ins, refreshes, prompt=none,
# client_credentials, introspection and userinfo; then the CLI's own answers (bad arguments,
# unknown users, no-ops, refused transitions, machine users removed and their names reused).
# TAP output.
# Usage: user_state.sh BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/gateway.sh"

bail() { echo "Bail out! $*"; exit 1; }
gw_need_rp
gw_init "$1"
gw() { "$GW_BIN" "$@" --config "$GW_CONF"; }
password="correct horse $RANDOM battery"
gw_user ada "$password" || bail "user add failed"
gw_client WEB --name "Web" --type web --auth-method basic --redirect-uri https://app.example/cb ||
  bail "client add"
project=$(gw client show "$WEB_ID" --json | jq -r .project_id)
api=$(gw api add --name "API" --project "$project" --json) || bail "api add"
machine=$(gw machine add --username svc --secret --json) || bail "machine add"
j() { jq -r "$2" <<<"$1"; }
gw_start || bail "serve did not start"

gw_node_tap "$here/user_state.mjs" ISSUER="$GW_ISSUER" GW_BIN="$GW_BIN" GW_CONF="$GW_CONF" \
  LOGIN=ada PASSWORD="$password" WEB_ID="$WEB_ID" WEB_SECRET="$WEB_SECRET" \
  API_ID="$(j "$api" .client_id)" API_SECRET="$(j "$api" .client_secret)" \
  M_NAME=svc M_SECRET="$(j "$machine" .client_secret)"

out=$GW_TMP/cli.out
err=$GW_TMP/cli.err
run() { # expected exit status, then the user subcommand and its arguments
  local want=$1 got=0
  shift
  gw user "$@" >"$out" 2>"$err" || got=$?
  [ "$got" -eq "$want" ] || { echo "# exit $got, wanted $want: $(cat "$err")"; return 1; }
}
one_line() { [ "$(wc -l <"$err")" -eq 1 ] && grep -q -- "$1" "$err" || { echo "# stderr: $(cat "$err")"; return 1; }; }
usage() { run 2 "$@" && one_line "" && [ ! -s "$out" ]; }
fails() { local why=$1; shift; run 1 "$@" && one_line "$why" && [ ! -s "$out" ]; }
m_id=$(j "$machine" .user_id)
gw_check "lock without --user is a usage error" usage lock
gw_check "lock --user without a value is a usage error" usage lock --user
gw_check "an unknown option is a usage error" usage unlock --user svc --force
gw_check "an operand is a usage error" usage deactivate --user svc extra
gw_check "--user twice is a usage error" usage remove --user svc --user svc
gw_check "an unknown user is exit 1, one line" fails "no user 'nobody'" lock --user nobody
gw_check "unlock of a locked machine user works" run 0 unlock --user svc
gw_check "... and prints its id" grep -qx "$m_id" "$out"
noop() { run 0 unlock --user svc && grep -qx "$m_id" "$out" && one_line "already active"; }
gw_check "unlock of an active user is a no-op: exit 0, the id, a note" noop
gw_check "lock the machine user again" \
  bash -c '"$0" user lock --user svc --config "$1" >/dev/null 2>&1' "$GW_BIN" "$GW_CONF"
gw_check "reactivate of a locked user is refused: exit 1 and the state" fails "is locked: cannot reactivate" reactivate --user svc
gw_check "deactivate of a locked user works" run 0 deactivate --user svc
gw_check "lock of an inactive user is refused" fails "is inactive: cannot lock" lock --user svc
gw_check "user remove of a machine user prints its id" run 0 remove --user svc
gw_check "... the id" grep -qx "$m_id" "$out"
gw_check "a removed user is unknown" fails "no user '$m_id'" remove --user "$m_id"
reuse() { gw machine add --username svc >/dev/null; }
gw_check "machine add takes the removed machine user's name again" reuse
gw_tap_end
