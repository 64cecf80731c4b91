# SPDX-License-Identifier: Apache-2.0
# Sourced by the integration tests that make several independent stores in one run, one per
# data dir. On LMDB a data dir is a store. Under `tests/kdbnext/run.sh --gateway-env` (the
# environment says KODER_ID_V2_STORAGE=kdbnext) every gateway a test starts talks to the one
# kdb-next server of that test, in the tenant the environment names; these helpers give each
# data dir a kdb-next tenant of its own instead, so that what is a store per data dir on LMDB
# is a tenant per data dir on kdb-next.
#
#   stores_kdbnext          true when the gateways of this test use kdb-next: STORES_BACKEND
#                           when the test sets it (tests/integration/lib_server.sh, which writes
#                           the storage keys into its configs itself), else the environment's
#                           KODER_ID_V2_STORAGE
#   store_tenant DIR        prints DIR's tenant: on kdb-next 1000002 + the first 48 bits of
#                           sha256(DIR) (never the environment's 1000001, never preseeded);
#                           on LMDB 1, the tenant of every LMDB store
#   store_flags VAR DIR     sets the array VAR to the flags that select DIR's store:
#                           --set data_dir=DIR, and on kdb-next --set kdbnext.tenant=TENANT
#   store_conf DIR          prints the config file lines that select it (data_dir = DIR, and
#                           on kdb-next kdbnext.tenant = TENANT). The environment overrides a
#                           config file, so a test that uses these calls store_conf_own_tenant
#                           first, which drops KODER_ID_V2_KDBNEXT_TENANT.
#   store_empty GATEWAY CONFIG DIR
#                           true when nothing was ever written to the store of CONFIG, whose
#                           data dir is DIR: on LMDB not even its file exists; on kdb-next
#                           `GATEWAY export` of it finds no entry

stores_kdbnext() { [ "${STORES_BACKEND:-${KODER_ID_V2_STORAGE:-lmdb}}" = kdbnext ]; }

store_tenant() {
  if stores_kdbnext; then
    local h
    h=$(printf '%s' "$1" | sha256sum | cut -c1-12)
    echo $((16#$h + 1000002))
  else
    echo 1
  fi
}

store_flags() {
  local -n _store_flags_out=$1
  _store_flags_out=(--set "data_dir=$2")
  if stores_kdbnext; then
    _store_flags_out+=(--set "kdbnext.tenant=$(store_tenant "$2")")
  fi
}

store_conf() {
  echo "data_dir = $1"
  if stores_kdbnext; then
    echo "kdbnext.tenant = $(store_tenant "$1")"
  fi
}

store_conf_own_tenant() { unset KODER_ID_V2_KDBNEXT_TENANT; }

store_empty() {
  if stores_kdbnext; then
    "$1" export --config "$2" - 2>&1 >/dev/null | grep -q '^exported 0 entries'
  else
    [ ! -e "$3/data.mdb" ]
  fi
}
