#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CORS in headless Chromium (issue 5): seeds a public client whose redirect URI is on one free
# loopback port and a confidential one, starts `serve`, and runs cors_browser.mjs: fetch()
# from a page on the registered origin reads every CORS endpoint (preflights included), from a
# page on another port it is blocked, and authorize is never readable. TAP.
# Usage: cors_browser.sh BINARY
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/gateway.sh"

[ -x /usr/bin/chromium ] || tap_bail "/usr/bin/chromium missing: run scripts/deps.sh test"
[ -d "$here/node_modules/playwright-core" ] ||
  tap_bail "playwright-core missing in tests/integration: run scripts/deps.sh test"

gw_init "$1"
port_ok=$(gw_free_port)
port_deny=$(gw_free_port)
while [ "$port_deny" = "$port_ok" ]; do port_deny=$(gw_free_port); done
gw_client SPA --name "Browser SPA" --type spa --redirect-uri "http://127.0.0.1:$port_ok/cb" ||
  tap_bail "client add (spa)"
gw_client WEB --name "Web" --type web --auth-method basic --redirect-uri https://app.example/cb ||
  tap_bail "client add (web)"
gw_start || tap_bail "serve did not start"

status=0
ISSUER=$GW_ISSUER PORT_OK=$port_ok PORT_DENY=$port_deny SPA_ID=$SPA_ID WEB_ID=$WEB_ID \
  WEB_SECRET=$WEB_SECRET node "$here/cors_browser.mjs" || status=$?
if ! gw_stop; then
  echo "not ok - the server stopped badly"
  status=1
fi
[ $status -eq 0 ] || gw_log_tail
exit $status
