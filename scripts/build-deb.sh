#!/usr/bin/env bash
# Builds the Debian package koder-id-v2-gateway_<version>_<arch>.deb from this checkout:
#
#     bash scripts/build-deb.sh [--out DIR] [--no-lintian]
#
# The package's files live in packaging/debian/ (the repository keeps nothing Debian-specific
# at its root). dpkg-buildpackage wants debian/ at the root of the source tree, so this script
# copies the tree's files (tracked and untracked, less what .gitignore ignores: no build
# folders, no local data) into a fresh temporary folder, copies packaging/debian/ to debian/
# there, and builds in that copy. A copy rather than a symlink: the checkout is never written
# to (no debian/ left behind, no obj-* folder, no stale state between builds), and a build
# from a dirty tree behaves like one from a clean clone.
#
# Then it runs lintian on the .deb (errors fail the build; warnings are listed and justified
# in packaging/README.md) and leaves the .deb in DIR (default: dist/ in the checkout).
# DEB_BUILD_OPTIONS passes through (nocheck skips the unit suite during the build).
# Needs root the first time only, to install debhelper, lintian and the build dependencies
# (scripts/deps.sh deb).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/dist
run_lintian=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --no-lintian) run_lintian=0; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-deb.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

bash "$here/scripts/deps.sh" deb

work=$(mktemp -d /tmp/koder-id-v2-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/koder-id-v2-gateway
mkdir -p "$src"

# The source tree: git's view of it when this is a checkout, else everything but build output.
if git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$here" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -xf - -C "$src"
else
  (cd "$here" && tar --exclude='./build*' --exclude=./dist --exclude=./data \
    --exclude=node_modules --exclude=.git -cf - .) | tar -xf - -C "$src"
fi
rm -rf "$src/debian"
cp -a "$src/packaging/debian" "$src/debian"

# The Debian version's upstream part must be meson's project version.
deb_version=$(cd "$src" && dpkg-parsechangelog -S Version)
meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$src/meson.build" | head -n1)
if [ "${deb_version%%-*}" != "$meson_version" ]; then
  echo "build-deb.sh: packaging/debian/changelog says $deb_version, meson.build says" \
    "$meson_version: add a changelog entry" >&2
  exit 1
fi

cd "$src"
if ! dpkg-checkbuilddeps 2>/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    dpkg-checkbuilddeps # prints what is missing
    exit 1
  fi
  echo "build-deb.sh: installing build dependencies"
  DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q -o DPkg::Lock::Timeout=300 "$src" \
    >"$work/build-dep.log" 2>&1 || { cat "$work/build-dep.log"; exit 1; }
fi

echo "build-deb.sh: building koder-id-v2-gateway $deb_version in $src"
if ! dpkg-buildpackage -b --no-sign -j"$(nproc)" >"$work/build.log" 2>&1; then
  tail -n 80 "$work/build.log"
  echo "build-deb.sh: dpkg-buildpackage failed" >&2
  exit 1
fi

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=$work/koder-id-v2-gateway_${deb_version}_${arch}.deb
[ -f "$deb" ] || { echo "build-deb.sh: $deb was not produced" >&2; exit 1; }

if [ "$run_lintian" = 1 ]; then
  # lintian as root says it would rather not run as root; it only reads the .deb here.
  rc=0
  lintian --fail-on error --display-level '>=warning' "$deb" >"$work/lintian.log" 2>&1 || rc=$?
  grep -v '^running with root privileges' "$work/lintian.log" || true
  [ $rc -eq 0 ] || { echo "build-deb.sh: lintian found errors" >&2; exit 1; }
fi

mkdir -p "$out"
cp "$deb" "$out/"
echo "build-deb.sh: $out/$(basename "$deb")"
