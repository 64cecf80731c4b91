#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `keys rotate` and `keys list` as operators use them: what rotate prints, the states list
# shows, refusals (a pending rotation, a wrong master key, an unreachable store, too short a
# publish_ahead) as one line with exit 1, usage errors with exit 2.
. "$(dirname "$0")/lib_server.sh"

conf=$WORK/gw.conf
write_config "$conf"
head -c 32 /dev/urandom >"$WORK/master.key"
chmod 600 "$WORK/master.key"

# usage errors: exit 2, one line, nothing touched
expect "help keys shows keys rotate" bash -c "'$BIN' help keys | grep -q 'keys rotate \[--now\] \[--force\]'"
expect "keys rotate with an unknown option exits 2" run 2 keys rotate --config "$conf" --frob
expect "...one line naming it" bash -c "[ \$(wc -l <'$err') -eq 1 ] && grep -q -- \"unknown option '--frob'\" '$err'"
expect "keys rotate with an argument exits 2" run 2 keys rotate --config "$conf" extra
expect "...one line" one_line_err
expect "keys with an unknown subcommand exits 2" run 2 keys spin
expect "...says rotate is one" err_has "list or rotate"
expect "the usage errors created no store" test ! -e "$WORK/data"

# the first rotation: a fresh store gets its first key, then the next one, pending
mkdir -p "$WORK/data"
now=$(date +%s)
expect "keys rotate exits 0" run 0 keys rotate --config "$conf"
expect "it prints the new key and when it signs (900 s ahead by default)" \
  grep -Eq '^new key [0-9]{18}: published now, signs from [0-9T:-]+Z \(in 900 s\)$' "$out"
expect "...and until when the old key stays published" \
  grep -Eq '^key [0-9]{18} stops signing then and stays published until [0-9T:-]+Z$' "$out"
new=$(grep -oE '^new key [0-9]{18}' "$out" | grep -oE '[0-9]{18}')
expect "nothing on stderr" test ! -s "$err"
expect "keys list shows one signing and one pending key" \
  bash -c "[ \$('$BIN' keys list --config '$conf' | grep -Ec '\ssigning\sv2\s') = 1 ] && '$BIN' keys list --config '$conf' | grep -Eq '^$new\sRS256\spending\sv2\s'"
expect "keys list --json: the pending key signs from now + 900 and is published" \
  bash -c "'$BIN' keys list --json --config '$conf' | jq -e --argjson now $now '.[] | select(.kid == \"$new\") | .state == \"pending\" and .published and (.signing|not) and .sign_from >= \$now + 900 and .sign_from <= \$now + 905 and .publish_until == 0' >/dev/null"
# default lifetimes are 12 h (access and ID tokens) and retire_margin 300 s
expect "the old key signs until the new one starts, then stays published 12 h + 300 s" \
  bash -c "'$BIN' keys list --json --config '$conf' | jq -e '(.[] | select(.state == \"pending\") | .sign_from) as \$f | .[] | select(.state == \"signing\") | .sign_until == \$f and .publish_until == \$f + 43200 + 300' >/dev/null"

# a second rotation while one is pending is refused with the reason
expect "keys rotate while a key is pending exits 1" run 1 keys rotate --config "$conf"
expect "...one line saying a rotation is pending, naming the key" \
  bash -c "[ \$(wc -l <'$err') -eq 1 ] && grep -q 'already pending: key $new signs from' '$err' && grep -q -- '--force' '$err'"
expect "...and nothing was added" bash -c "[ \$('$BIN' keys list --json --config '$conf' | jq length) = 2 ]"

# --force rotates again: the first pending key now signs only until the newer one starts
expect "keys rotate --force --json exits 0" run 0 keys rotate --force --json --config "$conf"
expect "--json: kid, sign_from, old_kid" jqe '(.kid|test("^[0-9]{18}$")) and .sign_from > 0 and (.old_kid|test("^[0-9]{18}$")) and (.emergency|not)' "$out"
forced=$(jq -r .kid "$out")
# the earlier pending key signs only until the forced one starts: pending while that window
# is open, retired when both rotations fell in the same second (a window of 0 s never signs)
expect "the forced key is pending; the earlier pending key's window ends where it starts" \
  bash -c "'$BIN' keys list --json --config '$conf' | jq -e --arg f '$forced' --arg p '$new' '(.[] | select(.kid == \$f) | .state == \"pending\") and ((.[] | select(.kid == \$f) | .sign_from) as \$s | .[] | select(.kid == \$p) | .sign_until == \$s and (if .sign_from < \$s then .state == \"pending\" else .state == \"retired\" end))' >/dev/null"

# --now (a compromised key): signs at once, warns, the old signer is retired but published
old_signer=$("$BIN" keys list --json --config "$conf" | jq -r '.[] | select(.state == "signing") | .kid')
expect "keys rotate --now without --force while keys are pending exits 1" run 1 keys rotate --now --config "$conf"
expect "keys rotate --now --force exits 0" run 0 keys rotate --now --force --config "$conf"
expect "...it signs at once" grep -Eq '^new key [0-9]{18}: published now, signs from [0-9T:-]+Z \(in 0 s\)$' "$out"
expect "...and warns on stderr that --now is for a compromised key" err_has "warning: --now is for a compromised key"
emergency=$(grep -oE '^new key [0-9]{18}' "$out" | grep -oE '[0-9]{18}')
expect "keys list: the emergency key signs, nothing is pending, three keys retired" \
  bash -c "'$BIN' keys list --json --config '$conf' | jq -e '([.[] | select(.state == \"signing\") | .kid] == [\"$emergency\"]) and ([.[] | select(.state == \"pending\")] | length == 0) and ([.[] | select(.state == \"retired\" and .published)] | length == 3)' >/dev/null"
expect "...the compromised signer stops now and stays published 12 h + 300 s" \
  bash -c "'$BIN' keys list --json --config '$conf' | jq -e '.[] | select(.kid == \"$old_signer\") | .sign_until <= now + 1 and .publish_until == .sign_until + 43500' >/dev/null"
expect "...the keys that never signed are retired too (sign_until <= sign_from)" \
  bash -c "'$BIN' keys list --json --config '$conf' | jq -e '[.[] | select(.kid == \"$new\" or .kid == \"$forced\") | .sign_until <= .sign_from] == [true, true]' >/dev/null"
expect "keys list prints the states as words" \
  bash -c "'$BIN' keys list --config '$conf' | awk -F'\t' 'NR > 1 {print \$3}' | sort | uniq -c | tr -s ' ' | grep -qx ' 3 retired' "

# configuration: publish_ahead cannot be shorter than what relying parties need
expect "keys rotate with keys.publish_ahead below reload_interval + 2 x jwks_max_age exits 1" \
  run 1 keys rotate --config "$conf" --set keys.publish_ahead=60
expect "...one line naming the key and the floor" \
  bash -c "[ \$(wc -l <'$err') -eq 1 ] && grep -q 'keys.publish_ahead: 60 s is shorter' '$err' && grep -q '(630 s)' '$err'"
expect "a short publish_ahead with short caches is allowed" \
  run 0 keys rotate --config "$conf" --set keys.publish_ahead=5 --set keys.jwks_max_age=2 --set keys.reload_interval=1
expect "...and used" out_has "(in 5 s)"

# failures at run time: exit 1, one line
cp "$WORK/master.key" "$WORK/master.good"
head -c 32 /dev/urandom >"$WORK/master.key"
expect "keys rotate with another master key exits 1" run 1 keys rotate --force --config "$conf"
expect "...one line saying the master key does not decrypt" \
  bash -c "[ \$(wc -l <'$err') -eq 1 ] && grep -q 'does not decrypt' '$err'"
cp "$WORK/master.good" "$WORK/master.key"
expect "keys rotate with no master key file exits 1" \
  run 1 keys rotate --config "$conf" --set master_key_file="$WORK/none.key"
expect "...one line saying it does not exist" bash -c "[ \$(wc -l <'$err') -eq 1 ] && grep -q 'does not exist' '$err'"
if [ "${KODER_TEST_STORE:-lmdb}" = kdbnext ]; then
  expect "keys rotate with kdb-next unreachable exits 1" \
    run 1 keys rotate --config "$conf" --set kdbnext.address=127.0.0.1:1 --set kdbnext.timeout_ms=500
else
  # a data dir that cannot be created (its parent is a file)
  expect "keys rotate on an unusable data dir exits 1" \
    run 1 keys rotate --config "$conf" --set data_dir="$WORK/master.good/data"
fi
expect "...one line" bash -c "[ \$(wc -l <'$err') -eq 1 ]"
expect "the failures changed nothing" bash -c "[ \$('$BIN' keys list --json --config '$conf' | jq length) = 5 ]"

finish
