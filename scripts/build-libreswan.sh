#!/usr/bin/env bash
# build-libreswan.sh — builds Libreswan 5 (pluto, whack, addconn, the `ipsec` script) from the
# upstream tarball in Debian 13 (trixie)'s source package, into a private prefix in a cache:
#   ${KIPSEC_LIBRESWAN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kipsec-libreswan}/<version>
# and prints that path on its last line. A second run with the cache present does nothing.
#
# Why built, not installed: Debian 12's libreswan (4.10) failed to install its own Child SAs when
# tried here, and its binary package conflicts with strongSwan's (both ship /usr/sbin/ipsec).
# A private prefix (never /usr, never /etc) lets both peers live on one machine.
# Why only the tarball: trixie's .dsc and debian.tar.xz 404 on the mirror; the orig tarball is
# there, and apt checks it against the signed Sources index. Debian's patches are packaging only.
#
# Env: LIBRESWAN_VERSION (default 5.2: the version trixie ships), KIPSEC_LIBRESWAN_CACHE,
# LIBRESWAN_JOBS (default 2: CI machines have 2 cores). Needs root only to install missing build
# dependencies (bookworm packages); the system's apt configuration is never changed.
set -euo pipefail

ver=${LIBRESWAN_VERSION:-5.2}
# sha256 of libreswan_5.2.orig.tar.gz as trixie's Sources lists it: the cache key stays meaning one build.
sha_5_2=c382bbd838c239f8d4c4e9cc320f3abf34f7b08e71d9e78ed029a96d963940ce
root=${KIPSEC_LIBRESWAN_CACHE:-${XDG_CACHE_HOME:-${HOME:?HOME unset}/.cache}/kipsec-libreswan}
final=$root/$ver

if [[ -f $final/.ok ]]; then
  echo "libreswan: $ver cached" >&2
  echo "$final"; exit 0
fi

mkdir -p "$root"
# Two setups at once (e.g. two checkouts) must not build into each other's staging dir.
exec 9>"$root/.lock"
flock 9
if [[ -f $final/.ok ]]; then echo "$final"; exit 0; fi

# Build dependencies from bookworm, only those missing. No DNSSEC/curl/PAM/LDAP/audit/seccomp
# (switched off below), so no libunbound/libldns/libcurl/libpam dev packages.
. "$(dirname "$(readlink -f "$0")")/debian-source.sh"
need_build_deps libreswan make gcc pkg-config bison flex libnss3-dev libnspr4-dev libnss3-tools libevent-dev libcap-ng-dev

# Scratch next to the cache, so the finished prefix is renamed into place in one step (a build
# that dies half-way never looks cached). Only this directory is ever deleted.
tmp=$(mktemp -d "$root/.build.XXXXXX")
cleanup() { [[ ${tmp:?} == "$root"/.build.* ]] && rm -rf -- "${tmp:?}"; }
trap cleanup EXIT

t0=$SECONDS
# 1. source: trixie's upstream tarball (sha256 pinned for 5.2).
tarball=$(fetch_orig_tarball libreswan trixie libreswan "libreswan_$ver.orig.tar.gz" "$([[ $ver == 5.2 ]] && echo "$sha_5_2")" "$tmp")
tar -xzf "$tarball" -C "$tmp/src"
src=$tmp/src/libreswan-$ver

# 2. build. Every path (config, NSS db, libexec) points into the private prefix; tests override
# them per run anyway (pluto --config/--nssdir/--rundir, addconn/whack --ctlsocket).
mk=(PREFIX="$final" SYSCONFDIR="$final/etc" NSSDIR="$final/nss"
    INITSYSTEM=docker INSTALL_INITSYSTEM=false
    USE_DNSSEC=false USE_LIBCURL=false USE_AUTHPAM=false USE_LDAP=false USE_NM=false
    USE_SYSTEMD_WATCHDOG=false USE_SECCOMP=false USE_LABELED_IPSEC=false USE_LINUX_AUDIT=false
    WERROR_CFLAGS=)
echo "libreswan: building $ver (make -j${LIBRESWAN_JOBS:-2} base; log in the scratch dir until done)" >&2
if ! nice -n 10 make -C "$src" -j"${LIBRESWAN_JOBS:-2}" base "${mk[@]}" >"$tmp/build.log" 2>&1 \
   || ! make -C "$src" install-base DESTDIR="$tmp/stage" "${mk[@]}" >>"$tmp/build.log" 2>&1; then
  tail -40 "$tmp/build.log" >&2
  echo "libreswan: build failed" >&2; exit 1
fi
staged=$tmp/stage$final
[[ -x $staged/libexec/ipsec/pluto && -x $staged/libexec/ipsec/whack && -x $staged/libexec/ipsec/addconn ]] \
  || { echo "libreswan: install-base left no pluto/whack/addconn under $staged" >&2; exit 1; }
cp "$tmp/build.log" "$staged/build.log"
secs=$((SECONDS - t0))
printf 'version=%s\nbuilt=%s\nseconds=%s\n' "$ver" "$(date -u +%FT%TZ)" "$secs" > "$staged/.ok"
# A prefix without .ok (a copy interrupted by hand) is moved into scratch and goes with it.
if [[ -e $final ]]; then mv -T "$final" "$tmp/stale"; fi
mv -T "$staged" "$final"
echo "libreswan: $ver built in ${secs} s (cold: download + make -j${LIBRESWAN_JOBS:-2} + install)" >&2
echo "$final"
