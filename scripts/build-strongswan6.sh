#!/usr/bin/env bash
# build-strongswan6.sh — builds strongSwan 6 (charon, swanctl, the plugins a post-quantum peer
# needs: openssl, ml for ML-KEM, kernel-netlink and kernel-libipsec; save-keys, which writes the
# IKE and ESP keys in Wireshark's formats for the interop and VM-lane tests to compare) from the upstream tarball in
# the source package of Debian's next release (forky), into a private prefix in a cache:
#   ${KIPSEC_STRONGSWAN6_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kipsec-strongswan6}/<version>
# and prints that path on its last line. A second run with the cache present does nothing, unless
# the configure line changed: .ok records its hash (the cache key), and a mismatch rebuilds.
#
# Why built: this machine's Debian (12) ships strongSwan 5.9, which has no ML-KEM and no RFC 9370
# multiple key exchanges; strongSwan 6 has both (the `ml` plugin implements FIPS 203 itself, so
# the system's OpenSSL 3.0 is enough). A private prefix (never /usr, never /etc) lets it live
# next to the system's 5.9, which the other lanes use.
# Why only the tarball: as for Libreswan (build-libreswan.sh), apt checks it against the suite's
# signed Sources index; Debian's patches are packaging only. Why forky: trixie lists 6.0.1 but its
# tarball 404s on the mirror these machines reach; forky's 6.1.0 is there.
#
# Env: STRONGSWAN6_SUITE (default forky), STRONGSWAN6_VERSION (default 6.1.0: what forky ships), KIPSEC_STRONGSWAN6_CACHE,
# STRONGSWAN6_JOBS (default 2). Needs root only to install missing build dependencies (bookworm
# packages); the system's apt configuration is never changed.
set -euo pipefail

ver=${STRONGSWAN6_VERSION:-6.1.0}
suite=${STRONGSWAN6_SUITE:-forky}
# sha256 of strongswan_6.1.0.orig.tar.bz2 as forky's Sources lists it: the cache key stays meaning one build.
sha_6_1_0=fe6c97481298767213cfc2e9a1da29fdd8018d481ff4cb9cf0283099654f20d4
root=${KIPSEC_STRONGSWAN6_CACHE:-${XDG_CACHE_HOME:-${HOME:?HOME unset}/.cache}/kipsec-strongswan6}
final=$root/$ver

# Config and plugins under the prefix; the pid files stay in /run (compiled in), which the tests
# give each charon privately (e2e/lib/strongswan.ts runs it under unshare).
conf=(--prefix="$final" --sysconfdir="$final/etc" --disable-defaults
      --enable-charon --enable-swanctl --enable-vici --enable-ikev2 --enable-nonce --enable-random
      --enable-openssl --enable-ml --enable-pem --enable-pkcs1 --enable-pkcs8 --enable-x509 --enable-pubkey
      --enable-constraints --enable-revocation --enable-kdf --enable-socket-default --enable-updown
      --enable-kernel-netlink --enable-kernel-libipsec --enable-libipsec --enable-save-keys
      --with-systemdsystemunitdir=no)
# The cache key: version and configure line (a build without a plugin the tests load is stale).
key=$(printf '%s\n' "$ver" "${conf[@]}" | sha256sum | cut -c1-16)
fresh() { [[ -f $final/.ok ]] && grep -qx "key=$key" "$final/.ok"; }

if fresh; then
  echo "strongswan6: $ver cached" >&2
  echo "$final"; exit 0
fi

mkdir -p "$root"
exec 9>"$root/.lock"
flock 9
if fresh; then echo "$final"; exit 0; fi

# Only what the configure line below needs: no gmp, curl, ldap, systemd, TPM.
. "$(dirname "$(readlink -f "$0")")/debian-source.sh"
need_build_deps strongswan6 make gcc pkg-config bison flex gperf libssl-dev bzip2

# Scratch next to the cache, renamed into place in one step; only this directory is ever deleted.
tmp=$(mktemp -d "$root/.build.XXXXXX")
cleanup() { [[ ${tmp:?} == "$root"/.build.* ]] && rm -rf -- "${tmp:?}"; }
trap cleanup EXIT

t0=$SECONDS
# 1. source: the suite's upstream tarball (sha256 pinned for 6.1.0).
tarball=$(fetch_orig_tarball strongswan6 "$suite" strongswan "strongswan_$ver.orig.tar.bz2" "$([[ $ver == 6.1.0 ]] && echo "$sha_6_1_0")" "$tmp")
tar -xjf "$tarball" -C "$tmp/src"
src=$tmp/src/strongswan-$ver

# 2. build, with the configure line above.
echo "strongswan6: building $ver (configure + make -j${STRONGSWAN6_JOBS:-2}; log in the scratch dir until done)" >&2
if ! (cd "$src" && ./configure "${conf[@]}" >"$tmp/build.log" 2>&1) \
   || ! nice -n 10 make -C "$src" -j"${STRONGSWAN6_JOBS:-2}" >>"$tmp/build.log" 2>&1 \
   || ! make -C "$src" install DESTDIR="$tmp/stage" >>"$tmp/build.log" 2>&1; then
  tail -40 "$tmp/build.log" >&2
  echo "strongswan6: build failed" >&2; exit 1
fi
staged=$tmp/stage$final
[[ -x $staged/libexec/ipsec/charon && -x $staged/sbin/swanctl && -f $staged/lib/ipsec/plugins/libstrongswan-ml.so && -f $staged/lib/ipsec/plugins/libstrongswan-save-keys.so ]] \
  || { echo "strongswan6: install left no charon/swanctl/ml/save-keys plugin under $staged" >&2; exit 1; }
cp "$tmp/build.log" "$staged/build.log"
secs=$((SECONDS - t0))
printf 'version=%s\nkey=%s\nbuilt=%s\nseconds=%s\n' "$ver" "$key" "$(date -u +%FT%TZ)" "$secs" > "$staged/.ok"
if [[ -e $final ]]; then mv -T "$final" "$tmp/stale"; fi
mv -T "$staged" "$final"
echo "strongswan6: $ver built in ${secs} s (cold: download + configure + make -j${STRONGSWAN6_JOBS:-2} + install)" >&2
echo "$final"
