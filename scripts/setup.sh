#!/usr/bin/env bash
# Installs what the project and its test lanes need on a fresh Debian machine of this kind, then
# builds. Idempotent and quick when everything is there (a warm machine): only missing Debian
# packages are installed, npm ci runs only when the lockfile changed.
#   Debian: iproute2, ping, strongSwan (charon, swanctl, plugins, pki), QEMU (kernel lane),
#           nftables/conntrack (the kernel lane's masquerading NAT router),
#           cpio/kmod (VM initramfs), tcpdump/strace (captures), openssl/curl (apiserver lane),
#           socat (cluster lane: QEMU's guestfwd to the host apiserver and the apiserver bridge
#           into every node namespace in the VM).
#   npm:    the locked dependencies, then the project's own build (tsc).
#   Go:     kube-apiserver/etcd/helm/kubectl are built by e2e/apiserver.sh on first use (cached).
#   C:      Libreswan 5 (VM lane interop peer), scripts/build-libreswan.sh (cached).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

# libstrongswan-standard-plugins carries charon's openssl and gcm plugins (ECP groups, AES-GCM, RSA-PSS):
# strongswan-charon only recommends it, and --no-install-recommends would leave it out.
pkgs=(iproute2 iputils-ping strongswan-charon strongswan-swanctl libcharon-extra-plugins
      libstrongswan-standard-plugins libstrongswan-extra-plugins strongswan-pki qemu-system-x86 cpio kmod tcpdump strace openssl curl
      nftables conntrack socat
      make g++ python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages (${missing[*]}) and not root: install them, or run as root" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Libreswan 5 for the VM lane's interop tests (e2e/lib/libreswan.ts): built from trixie's source
# into ~/.cache/kipsec-libreswan, never /usr; installs its own build dependencies. Cold ~1 min, then cached.
bash scripts/build-libreswan.sh >/dev/null

# strongSwan 6.1 (ML-KEM, RFC 9370) for e2e/interop/strongswan6-*.test.ts and the VM lane's
# e2e/vm/strongswan6-mlkem-kernel.test.ts (the VM reads the same cache): built into
# ~/.cache/kipsec-strongswan6 next to the system's 5.9, never /usr. Cold ~7 min on 2 cores (396 s measured), then cached.
bash scripts/build-strongswan6.sh >/dev/null

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "setup: build (tsc)" >&2
npx tsc -p tsconfig.json
