#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The Debian package beside v1, on this machine (packaging/README.md, "The side-by-side
# test", says why here and not in a debootstrap chroot).
#
#     side_by_side.sh SOURCE_ROOT
#
# Lays out a stand-in v1 (the bare `koder-id` names: /usr/local/bin/koder-id, a
# koder-id.service unit, /etc/koder-id/, /var/lib/koder-id/, the user koder-id) wherever the
# real one is absent, records owners, modes, sizes, times and checksums of all of it, then
# builds the .deb (scripts/build-deb.sh, lintian included), installs it, runs the installed
# binary as koder-id-v2 with the packaged config (a smoke test over HTTP), upgrades to a second
# version, removes and purges: after every step v1 is byte-for-byte and owner-for-owner what
# it was, and strace shows that no dpkg step opened or even looked at a v1 path. Everything
# the test created is removed at the end, also when it fails.
#
# Needs root (it installs a package) and runs only one at a time per machine (a lock). It
# refuses to run where koder-id-v2-gateway is really installed. Exit 77 (skip) when not root,
# and under tests/kdbnext/run.sh --gateway-env (see below).
set -euo pipefail

src=$(cd "${1:?usage: side_by_side.sh SOURCE_ROOT}" && pwd)
# LMDB only. Under tests/kdbnext/run.sh --gateway-env the environment would move the installed
# service to kdb-next, but what this test checks is the package's own layout: the packaged
# config's LMDB store in /var/lib/koder-id-v2 (owned by koder-id-v2, untouched by an upgrade,
# kept by remove, removed by purge) beside v1's files. The same steps on kdb-next (user add,
# client add, check, serve, a sign-in) are what the other wrapped integration tests do.
if [ "${KODER_ID_V2_STORAGE:-}" = kdbnext ]; then
  echo "side_by_side: skipped on kdb-next: it tests the Debian package's LMDB store in /var/lib/koder-id-v2"
  exit 77
fi
if [ "$(id -u)" != 0 ]; then
  echo "side_by_side: needs root (installs and purges a package); skipped"
  exit 77
fi

PKG=koder-id-v2-gateway
MARK=/run/koder-id-v2-pkgtest.state   # what this test created, for cleanup after a crash
V1_PATHS=(/usr/local/bin/koder-id /etc/koder-id /var/lib/koder-id
  /etc/systemd/system/koder-id.service /etc/systemd/system/multi-user.target.wants/koder-id.service
  /lib/systemd/system/koder-id.service)
V2_DIRS=(/etc/koder-id-v2 /var/lib/koder-id-v2)

t_start=$(date +%s)
step() { printf '\n== [%ss] %s\n' "$(($(date +%s) - t_start))" "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# One run per machine at a time: engineers' worktrees and CI share this machine's dpkg. CI
# (CI=true) waits for the lock; elsewhere a run that finds another one going skips after a
# minute rather than queue behind it.
exec 9>/run/lock/koder-id-v2-pkgtest.lock
if [ "${CI:-}" = true ]; then
  flock -w 1500 9 || fail "another package test held /run/lock/koder-id-v2-pkgtest.lock for 25 min"
elif ! flock -w 60 9; then
  echo "side_by_side: another package test is running on this machine; skipped (CI waits)"
  exit 77
fi

work=$(mktemp -d /tmp/koder-id-v2-pkgtest.XXXXXX)
chmod 755 "$work"
server_pid=

dpkg_retry() { # dpkg with a wait for its lock (apt may be running for another worktree)
  local i out
  for i in $(seq 1 120); do
    if out=$("$@" 2>&1); then
      printf '%s\n' "$out"
      return 0
    fi
    if grep -q 'lock' <<<"$out" && ! grep -q 'error processing' <<<"$out"; then
      sleep 2
      continue
    fi
    printf '%s\n' "$out" >&2
    return 1
  done
  printf '%s\n' "$out" >&2
  return 1
}

pkg_status() { dpkg-query -W -f='${db:Status-Status}' $PKG 2>/dev/null || echo not-installed; }

undo_marked() { # removes what $MARK says this test (or an earlier, interrupted run) created
  [ -f "$MARK" ] || return 0
  if [ "$(pkg_status)" != not-installed ]; then
    dpkg_retry dpkg --purge $PKG >/dev/null
  fi
  local kind what
  while read -r kind what; do
    case "$kind" in
      path) rm -rf -- "$what" ;;
      user) deluser --quiet --system "$what" >/dev/null 2>&1
            delgroup --quiet --system "$what" >/dev/null 2>&1 ;;
    esac
  done < <(tac "$MARK")
  rm -f "$MARK"
}

cleanup() {
  local rc=$?
  set +e
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  undo_marked
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

# --- A clean start: the package, its user and folders belong to this test or to nobody ---
if [ -f "$MARK" ]; then
  echo "side_by_side: cleaning up after an earlier run that did not finish"
  undo_marked
fi
if [ "$(pkg_status)" != not-installed ]; then
  fail "$PKG is installed on this machine ($(pkg_status)); this test installs and purges it, so it refuses"
fi
for p in "${V2_DIRS[@]}"; do
  [ ! -e "$p" ] || fail "$p exists on this machine; this test would purge it, so it refuses"
done
getent passwd koder-id-v2 >/dev/null && fail "user koder-id-v2 exists on this machine; refusing"
: >"$MARK"
echo "user koder-id-v2" >>"$MARK"
for p in "${V2_DIRS[@]}"; do echo "path $p" >>"$MARK"; done

# --- The stand-in v1: created only where the real one is absent ---
step "stand-in v1"
if ! getent passwd koder-id >/dev/null; then
  echo "user koder-id" >>"$MARK"
  adduser --quiet --system --group --home /var/lib/koder-id --no-create-home koder-id
fi
mk() { # kind path mode owner [content]
  local kind=$1 p=$2 mode=$3 owner=$4
  [ -e "$p" ] || [ -L "$p" ] && return 0
  echo "path $p" >>"$MARK"
  case "$kind" in
    dir) install -d -m "$mode" -o "${owner%:*}" -g "${owner#*:}" "$p" ;;
    file) printf '%s' "$5" >"$p"; chown "$owner" "$p"; chmod "$mode" "$p" ;;
    rand) head -c 32 /dev/urandom >"$p"; chown "$owner" "$p"; chmod "$mode" "$p" ;;
    link) ln -s "$5" "$p" ;;
  esac
}
mk file /usr/local/bin/koder-id 0755 root:root $'#!/bin/sh\n# stand-in v1 (Zitadel)\nexit 0\n'
mk dir /etc/koder-id 0750 root:koder-id
mk file /etc/koder-id/config.yaml 0640 root:koder-id $'Port: 8090\nDatabase:\n  Port: 5433\n'
mk rand /etc/koder-id/masterkey 0600 koder-id:koder-id
mk dir /var/lib/koder-id 0750 koder-id:koder-id
mk dir /var/lib/koder-id/data 0700 koder-id:koder-id
mk rand /var/lib/koder-id/data/store.bin 0600 koder-id:koder-id
mk file /etc/systemd/system/koder-id.service 0644 root:root \
  $'[Unit]\nDescription=koder-id v1\n[Service]\nUser=koder-id\nExecStart=/usr/local/bin/koder-id start --port 8090\n[Install]\nWantedBy=multi-user.target\n'
mkdir -p /etc/systemd/system/multi-user.target.wants
mk link /etc/systemd/system/multi-user.target.wants/koder-id.service 0777 root:root \
  /etc/systemd/system/koder-id.service

snapshot() {
  local p
  for p in "${V1_PATHS[@]}"; do
    if [ -e "$p" ] || [ -L "$p" ]; then
      find "$p" -printf '%p type=%y owner=%u:%g mode=%m size=%s mtime=%T@ ctime=%C@ link=%l\n' | sort
      find "$p" -type f -print0 | sort -z | xargs -0 -r sha256sum
    else
      echo "$p absent"
    fi
  done
  echo "passwd: $(getent passwd koder-id)"
  echo "group: $(getent group koder-id)"
  echo "shadow: $(getent shadow koder-id)"
}
snapshot >"$work/v1.before"
echo "recorded $(wc -l <"$work/v1.before") lines about v1"
v1_unchanged() { # step name
  snapshot >"$work/v1.now"
  diff -u "$work/v1.before" "$work/v1.now" || fail "v1 changed during: $1"
  echo "v1 unchanged after: $1"
}
# strace of a dpkg step: no system call of dpkg or of a maintainer script may open, execute,
# change or remove a v1 path. Metadata lookups (the stat family) are allowed and listed:
# deb-systemd-helper's purge walks /etc/systemd/system to remove empty folders and stats
# every entry there, v1's unit included; the snapshot shows that nothing changed.
V1_RE='"(/usr/local/bin/koder-id|/etc/koder-id|/var/lib/koder-id|[^"]*/koder-id\.service)(/[^"]*)?"'
STAT_RE='^[0-9]+ +(stat|lstat|newfstatat|fstatat64|statx)\('
traced() { # name, dpkg arguments...
  local name=$1; shift
  dpkg_retry strace -f -qq -e trace=%file -o "$work/$name.strace" dpkg "$@"
}
v1_untouched() { # name
  grep -E "$V1_RE" "$work/$1.strace" >"$work/$1.v1calls" || true
  if grep -Ev "$STAT_RE" "$work/$1.v1calls" >"$work/$1.v1bad"; then
    head -n 20 "$work/$1.v1bad" >&2
    fail "$1: a system call opened, executed, changed or removed a v1 path"
  fi
  echo "strace: $1 made $(wc -l <"$work/$1.strace") file system calls, none opening or changing a v1 path ($(wc -l <"$work/$1.v1calls") stat of one)"
}

# --- Build ---
step "build the package (scripts/build-deb.sh)"
t0=$(date +%s)
DEB_BUILD_OPTIONS=nocheck bash "$src/scripts/build-deb.sh" --out "$work/dist" 2>&1 | tail -n 20
deb=$(ls "$work"/dist/${PKG}_*.deb)
echo "built $(basename "$deb") in $(($(date +%s) - t0)) s"

step "dpkg -c lists only -v2 paths"
dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|; s|/$||; s|^$|/|' >"$work/contents"
std_dirs='^(/|/etc|/lib|/lib/systemd|/lib/systemd/system|/usr|/usr/bin|/usr/share|/usr/share/doc|/usr/share/man|/usr/share/man/man1)$'
bad=$(grep -Ev "$std_dirs" "$work/contents" | grep -v -- 'koder-id-v2' || true)
[ -z "$bad" ] || fail "paths without -v2 in the package: $bad"
bad=$(grep -E 'koder-id([^-]|-[^v]|$)' "$work/contents" | grep -v -- 'koder-id-v2' || true)
[ -z "$bad" ] || fail "v1 names in the package: $bad"
for want in /usr/bin/koder-id-v2-gateway /lib/systemd/system/koder-id-v2-gateway.service \
  /etc/koder-id-v2/gateway.conf /usr/share/man/man1/koder-id-v2-gateway.1.gz; do
  grep -qx -- "$want" "$work/contents" || fail "$want is not in the package"
done
cat "$work/contents"
v1_unchanged "build"

# --- Install ---
step "install (dpkg -i)"
traced install -i "$deb"
v1_untouched install
v1_unchanged "install"
[ "$(pkg_status)" = installed ] || fail "not installed: $(pkg_status)"
dpkg-query -W -f='${Conffiles}\n' $PKG | grep -q '/etc/koder-id-v2/gateway.conf' ||
  fail "gateway.conf is not a conffile"
uid=$(id -u koder-id-v2) && [ "$uid" -lt 1000 ] || fail "koder-id-v2 is not a system user"
[ "$(stat -c '%U:%G %a' /var/lib/koder-id-v2)" = "koder-id-v2:koder-id-v2 750" ] ||
  fail "/var/lib/koder-id-v2 is $(stat -c '%U:%G %a' /var/lib/koder-id-v2)"
[ "$(stat -c '%U:%G %a %s' /etc/koder-id-v2/master.key)" = "root:koder-id-v2 640 32" ] ||
  fail "master.key is $(stat -c '%U:%G %a %s' /etc/koder-id-v2/master.key)"
key_sum=$(sha256sum </etc/koder-id-v2/master.key)
[ -L /etc/systemd/system/multi-user.target.wants/koder-id-v2-gateway.service ] ||
  fail "the unit was not enabled"
step "systemd-analyze verify and security"
verify_out=$(systemd-analyze verify /lib/systemd/system/koder-id-v2-gateway.service 2>&1) ||
  fail "systemd-analyze verify: $verify_out"
[ -z "$verify_out" ] || fail "systemd-analyze verify is not clean: $verify_out"
echo "systemd-analyze verify: clean"
score=$(systemd-analyze security --offline=true /lib/systemd/system/koder-id-v2-gateway.service 2>&1 |
  sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security --offline=true: exposure $score (0 = best, 10 = worst)"
awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 2.0) }' || fail "exposure $score > 2.0"

# --- The installed binary, as the service would run it ---
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
as_service() { # command... : as the unit runs it: its user, no new privileges, no
  # capabilities, umask 077, in /. Only as `as_service ... &`: it execs all the way down, so
  # $! is the program's own pid.
  exec setpriv --reuid koder-id-v2 --regid koder-id-v2 --init-groups --no-new-privs \
    --bounding-set=-all --inh-caps=-all -- /bin/sh -c 'umask 077 && cd / && exec "$@"' sh "$@"
}
no_foreign_files() { # every file in the data folder belongs to koder-id-v2
  local bad
  bad=$(find /var/lib/koder-id-v2 \( ! -user koder-id-v2 -o ! -group koder-id-v2 \) -printf '%p %u:%g\n')
  [ -z "$bad" ] || fail "files in /var/lib/koder-id-v2 the service cannot own: $bad"
}

step "the installed binary runs as koder-id-v2"
/usr/bin/koder-id-v2-gateway --version
source "$src/tests/package/smoke.sh"
smoke_test install
no_foreign_files
v1_unchanged "smoke test"

# --- Upgrade to a second version ---
step "upgrade"
ver=$(dpkg-deb -f "$deb" Version)
dpkg-deb -R "$deb" "$work/re"
sed -i "s/^Version: .*/Version: ${ver}+pkgtest1/" "$work/re/DEBIAN/control"
dpkg-deb --root-owner-group -b "$work/re" "$work/${PKG}_${ver}+pkgtest1.deb" >/dev/null
echo "# a local edit the upgrade must keep" >>/etc/koder-id-v2/gateway.conf
conf_sum=$(sha256sum </etc/koder-id-v2/gateway.conf)
find /var/lib/koder-id-v2 -printf '%p %u:%g %m %s %T@\n' | sort >"$work/data.before"
traced upgrade -i --force-confold "$work/${PKG}_${ver}+pkgtest1.deb"
v1_untouched upgrade
v1_unchanged "upgrade"
[ "$(dpkg-query -W -f='${Version}' $PKG)" = "${ver}+pkgtest1" ] || fail "upgrade did not happen"
[ "$(sha256sum </etc/koder-id-v2/master.key)" = "$key_sum" ] || fail "upgrade changed the master key"
[ "$(sha256sum </etc/koder-id-v2/gateway.conf)" = "$conf_sum" ] || fail "upgrade lost the local config edit"
find /var/lib/koder-id-v2 -printf '%p %u:%g %m %s %T@\n' | sort >"$work/data.after"
diff -u "$work/data.before" "$work/data.after" || fail "upgrade touched the store"
[ "$(id -u koder-id-v2)" = "$uid" ] || fail "upgrade changed the uid of koder-id-v2"
smoke_test upgrade
no_foreign_files
v1_unchanged "smoke test after upgrade"

# --- Remove: configuration, key and store stay ---
step "remove (dpkg -r)"
traced remove -r $PKG
v1_untouched remove
v1_unchanged "remove"
for gone in /usr/bin/koder-id-v2-gateway /lib/systemd/system/koder-id-v2-gateway.service \
  /usr/share/man/man1/koder-id-v2-gateway.1.gz; do
  [ ! -e "$gone" ] || fail "$gone is still there after remove"
done
[ "$(sha256sum </etc/koder-id-v2/master.key)" = "$key_sum" ] || fail "remove changed the master key"
[ -f /etc/koder-id-v2/gateway.conf ] || fail "remove deleted the conffile"
[ -n "$(ls -A /var/lib/koder-id-v2)" ] || fail "remove emptied the store"

# --- Purge: v2's data goes, after saying so ---
step "purge (dpkg -P)"
traced purge -P $PKG | tee "$work/purge.out"
v1_untouched purge
v1_unchanged "purge"
grep -q 'removing the v2 store /var/lib/koder-id-v2' "$work/purge.out" || fail "purge did not say it removes the store"
grep -q 'removing the master key /etc/koder-id-v2/master.key' "$work/purge.out" || fail "purge did not say it removes the master key"
for gone in /etc/koder-id-v2 /var/lib/koder-id-v2 \
  /etc/systemd/system/multi-user.target.wants/koder-id-v2-gateway.service; do
  [ ! -e "$gone" ] && [ ! -L "$gone" ] || fail "$gone is still there after purge"
done
[ "$(pkg_status)" = not-installed ] || fail "after purge the package is $(pkg_status)"

step "done: v1 was never touched; cleaning up"
