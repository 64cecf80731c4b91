#!/usr/bin/env bash
# The second quick-start command: installs what the tests need, builds, runs every suite (a
# normal build; its integration suite a second time with storage = kdbnext against the
# reference kdb-next server; then unit and integration suites again under AddressSanitizer and
# UBSan), and ends with one line `N passed, N failed` counted over all of them.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

bash scripts/deps.sh test || { echo "0 passed, 1 failed"; exit 1; }

status=0
build_failures=0
logs=()

run_build() { # name, setup args...
  local dir=$1; shift
  if [ ! -d "$dir" ]; then
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
  fi
  ninja -C "$dir" || return 1
}

if run_build build; then
  meson test -C build --print-errorlogs --num-processes 2 || status=1
  logs+=(build/meson-logs/testlog.json)
  # The integration suite again with storage = kdbnext: tests/kdbnext/run.sh --gateway-env
  # starts a reference kdb-next server (Python grpcio) per test and points every gateway the
  # test starts at it. Left out: suite 'kdbnext' (on kdb-next already) and suite 'package'
  # (no store). Its own log, so the summary counts these results beside the first run's.
  kdb_log=build/meson-logs/testlog-kdbnext-run.sh.json # meson appends the wrapper's name
  rm -f "$kdb_log"
  meson test -C build --no-rebuild --print-errorlogs --num-processes 2 --suite integration \
    --no-suite kdbnext --no-suite package --logbase testlog-kdbnext \
    --wrapper "$here/tests/kdbnext/run.sh --gateway-env --" || status=1
  logs+=("$kdb_log")
else
  echo "build failed"; status=1; build_failures=$((build_failures + 1))
fi

if [ "${SKIP_ASAN:-0}" != 1 ]; then
  export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  export LSAN_OPTIONS=suppressions=$here/tests/lsan.supp:print_suppressions=0
  if CC=clang run_build build-asan -Db_sanitize=address,undefined -Db_lundef=false; then
    meson test -C build-asan --print-errorlogs --num-processes 2 --suite unit --suite integration \
      --no-suite slow || status=1
    logs+=(build-asan/meson-logs/testlog.json)
  else
    echo "sanitizer build failed"; status=1; build_failures=$((build_failures + 1))
  fi
fi

BUILD_FAILURES=$build_failures /usr/bin/python3 - "${logs[@]}" <<'PY'
import json, os, sys
passed = skipped = 0
failed = int(os.environ.get("BUILD_FAILURES", "0"))  # a build that fails is a failed test
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        continue
    for line in lines:
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
if not sys.argv[1:]:
    failed += 1
if skipped:
    print(f"({skipped} skipped: see the logs for each reason)")
print(f"{passed} passed, {failed} failed")  # CI reads this last line as it is
sys.exit(1 if failed else 0)
PY
r=$?
[ $status -eq 0 ] || r=1
exit $r
