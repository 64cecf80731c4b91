#!/usr/bin/env bash
# Installs what koder-id-v2-gateway needs on Debian 12: `deps.sh` for building and running,
# `deps.sh test` adds what the test suites need (PostgreSQL, Python gRPC, clang, Chromium,
# npm packages, and the Debian packaging tools the package test uses), `deps.sh deb` adds
# only the packaging tools (scripts/build-deb.sh). Safe to run again; installs only what is
# missing. packaging/debian/control's Build-Depends must list the build packages (less the
# compiler, openssl and ca-certificates, which are not build inputs).
set -euo pipefail

build_pkgs=(meson ninja-build pkg-config gcc libh2o-evloop-dev libssl-dev libjansson-dev
  libjwt-dev libprotobuf-c-dev protobuf-c-compiler libnghttp2-dev liblmdb-dev libpq-dev
  libcrypt-dev libcmocka-dev openssl ca-certificates)
test_pkgs=(postgresql curl wrk python3-grpcio python3-protobuf protobuf-compiler clang
  libclang-rt-14-dev chromium lmdb-utils jq xxd strace iproute2)
deb_pkgs=(debhelper dpkg-dev fakeroot lintian man-db systemd adduser)

want=("${build_pkgs[@]}")
if [ "${1:-}" = test ]; then
  want+=("${test_pkgs[@]}" "${deb_pkgs[@]}")
elif [ "${1:-}" = deb ]; then
  want+=("${deb_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages (${missing[*]}); run as root or install them" >&2
    exit 1
  fi
  echo "deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = test ]; then
  if ! command -v node >/dev/null; then
    echo "deps.sh: node is missing: the integration tests need Node.js 20 or newer" >&2
    exit 1
  fi
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "deps.sh: Node.js $major found; openid-client and playwright-core need Node.js 20 or newer" >&2
    exit 1
  fi
  here=$(cd "$(dirname "$0")/.." && pwd)
  if [ -f "$here/tests/integration/package.json" ]; then
    (cd "$here/tests/integration" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  fi
fi
