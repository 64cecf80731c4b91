#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz: clang, ASan, -Dfuzz=true) and runs them one after
# the other: `scripts/fuzz.sh [SECONDS] [TARGET...]` (default 300 s each, every target). Each
# run starts from tests/fuzz/corpus/<target>/ and keeps what it finds in fuzz-work/<target>/
# (not committed); a crash is written to fuzz-work/crash-<target>-*, and the script ends
# non-zero. Add a crashing input to tests/fuzz/corpus/<target>/ once it is fixed: it then runs
# as a unit test on every CI run. Final stats (executions, cov, ft) go to fuzz-work/<target>.log.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
secs=${1:-300}
shift || true

if [ ! -d build-fuzz ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address -Db_lundef=false \
    -Dc_args=-fsanitize=fuzzer-no-link >build-fuzz.setup.log 2>&1 || { cat build-fuzz.setup.log; exit 1; }
fi
ninja -C build-fuzz || exit 1

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for d in tests/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi
status=0
mkdir -p fuzz-work
for t in "${targets[@]}"; do
  mkdir -p "fuzz-work/$t"
  build-fuzz/tests/fuzz/fuzz_"$t" -max_total_time="$secs" -max_len=8192 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="fuzz-work/crash-$t-" \
    "fuzz-work/$t" "tests/fuzz/corpus/$t" >"fuzz-work/$t.log" 2>&1 || status=1
  printf '%-10s %s\n' "$t" "$(grep -E '^#[0-9]+[[:space:]]+DONE' "fuzz-work/$t.log" | tail -1)"
done
exit $status
