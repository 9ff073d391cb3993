#!/bin/bash
# The Debian packages (packaging/CMakeLists.txt): cpack builds irt-hub and
# irt-node from BUILD's binaries. Each package is unpacked into a throwaway root
# and checked there:
# - its control data: name, version, library dependencies, conffiles and maintainer scripts;
# - its binary answers --version;
# - its unit carries the hardening docs/operations.md promises, and
#   `systemd-analyze verify` accepts it;
# - `systemd-analyze security` rates the unit's exposure at 2.0 ("OK") or below.
# Usage: tests/check_packages.sh BUILD_DIR WORK_DIR
set -eu
build=$1 work=$2
fail() { echo "check_packages: $*" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"
(cd "$build" && cpack -G DEB -B "$work/out" > "$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack failed"; }
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")

for who in hub node; do
  deb=$(find "$work/out" -maxdepth 1 -name "irt-${who}_${version}_*.deb" | head -1)
  [ -n "$deb" ] || fail "cpack made no irt-$who package of version $version (see $work/cpack.log)"
  [ "$(dpkg-deb -f "$deb" Package)" = "irt-$who" ] || fail "$deb: wrong package name"
  depends=$(dpkg-deb -f "$deb" Depends)
  for lib in libsodium libsqlite3 libc6 systemd; do
    grep -q "$lib" <<< "$depends" || fail "irt-$who: Depends lacks $lib: '$depends'"
  done

  root=$work/root-$who control=$work/control-$who
  dpkg-deb -x "$deb" "$root"
  dpkg-deb -e "$deb" "$control"
  [ "$(cat "$control/conffiles")" = "/etc/default/irt-$who" ] || fail "irt-$who: conffiles is not /etc/default/irt-$who"
  for script in postinst postrm; do
    [ -x "$control/$script" ] || fail "irt-$who: no $script"
    sh -n "$control/$script" || fail "irt-$who: $script is not valid sh"
  done
  for file in usr/bin/irt-$who usr/lib/systemd/system/irt-$who.service usr/lib/sysusers.d/irt-$who.conf \
              etc/default/irt-$who usr/share/doc/irt-$who/operations.md; do
    [ -f "$root/$file" ] || fail "irt-$who: the package lacks /$file"
  done

  answer=$("$root/usr/bin/irt-$who" --version)
  [ "$answer" = "irt-$who $version" ] || fail "irt-$who --version answered '$answer', expected 'irt-$who $version'"

  unit=$root/usr/lib/systemd/system/irt-$who.service
  for setting in "User=irt-$who" "ProtectSystem=strict" "ProtectHome=yes" "NoNewPrivileges=yes" "PrivateTmp=yes" \
                 "CapabilityBoundingSet=" "StateDirectory=irt-$who" "LoadCredential=passphrase:/etc/irt-$who/passphrase"; do
    grep -qx "$setting" "$unit" || fail "irt-$who.service lacks '$setting'"
  done
  if grep -q "PASSPHRASE" "$unit" "$root/etc/default/irt-$who"; then
    fail "irt-$who: a passphrase is passed in the environment; it comes as a systemd credential"
  fi
  # verify loads the unit as systemd would: every setting known and well formed,
  # ExecStart= executable. It runs on a copy whose paths point into the root; a
  # warning fails the check as an error does.
  mkdir -p "$work/units-$who"
  sed "s|/usr/bin/irt-$who|$root/usr/bin/irt-$who|; s|EnvironmentFile=/etc/|EnvironmentFile=$root/etc/|" "$unit" \
    > "$work/units-$who/irt-$who.service"
  if ! systemd-analyze verify --man=no "$work/units-$who/irt-$who.service" > "$work/verify-$who.log" 2>&1 ||
     [ -s "$work/verify-$who.log" ]; then
    cat "$work/verify-$who.log"
    fail "systemd-analyze verify does not accept irt-$who.service as it is"
  fi
  rating=$(systemd-analyze security --offline=true --root="$root" --no-pager "/usr/lib/systemd/system/irt-$who.service" 2>&1 |
           sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
  [ -n "$rating" ] || fail "systemd-analyze security gave no rating for irt-$who.service"
  echo "check_packages: irt-$who $version: $(du -k "$deb" | cut -f1) KiB, exposure $rating (limit 2.0)"
  awk -v r="$rating" 'BEGIN { exit !(r <= 2.0) }' || fail "irt-$who.service's exposure $rating is above 2.0"
done
echo "check_packages: both packages build, install into a root, answer --version and their units verify"
