#!/usr/bin/env bash
# bench/esp-vm.sh [--seconds 10] [--algorithm aes-gcm-16|chacha20-poly1305]
# Runs bench/esp-vs-libipsec.ts --with-kernel inside the kernel-lane VM (e2e/kernel-vm.sh): kipsec's
# userspace ESP, strongSwan's kernel-libipsec and the kernel's own ESP (the host kernel of these
# machines has none), one TCP stream and a 64-byte UDP flood through each, in one run.
# The VM is Debian's kernel under QEMU TCG emulation, several times slower than the host: only
# ratios within one run mean anything. KVM_CPU (QEMU -cpu, e.g. max: AES-NI, PCLMUL, AVX2) picks
# which CPU features the guest, and so both OpenSSL and the kernel's crypto, can use.
# The figures land in .lane-results/esp-vm/ (KVM_OUT). Takes ~5-10 minutes with the boot.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)

if [[ -z ${KIPSEC_IN_VM:-} ]]; then
  cd "$root"
  echo "host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) before the VM boots; QEMU -cpu ${KVM_CPU:-default}"
  rc=0; export KVM_TIMEOUT=${KVM_TIMEOUT:-2400}
  export KVM_OUT=${KVM_OUT:-$root/.lane-results/esp-vm}
  bash e2e/kernel-vm.sh "$root/bench/esp-vm.sh" "$@" || rc=$?
  echo "host: load $(cut -d' ' -f1-3 /proc/loadavg) after the VM run; figures in $KVM_OUT/esp-vs-libipsec.txt"
  exit "$rc"
fi

for m in esp4 esp4_offload xfrm_user xfrm4_tunnel veth tun gcm ghash_generic aes_generic ctr seqiv echainiv \
         chacha20poly1305 aesni_intel ghash_clmulni_intel; do modprobe -q "$m" 2>/dev/null || true; done
ip link set lo up
out=${VM_OUT:-/tmp}/esp-vs-libipsec.txt
{
  echo "vm: kernel $(uname -r), node $(node --version), $(nproc) vCPUs, strongSwan $(dpkg-query -W -f='${Version}' libstrongswan 2>/dev/null || echo '?')"
  echo "vm: CPU flags of note: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'aes|pclmulqdq|ssse3|avx|avx2|vaes|vpclmulqdq' | tr '\n' ' ')"
  echo "vm: ESP/crypto modules: $(lsmod | awk 'NR > 1 && $1 ~ /^(esp4|esp4_offload|aesni_intel|ghash_clmulni_intel|aes_generic|ghash_generic|gcm|chacha20poly1305)$/ {print $1}' | sort | tr '\n' ' ')"
} | tee "$out"
rc=0
node --import tsx bench/esp-vs-libipsec.ts --with-kernel "$@" 2>&1 | tee -a "$out" || rc=$?
echo "vm: gcm drivers after the run: $(awk '/^name/ {n=$3} /^driver/ && n ~ /gcm/ {print n "=" $3}' /proc/crypto | sort -u | tr '\n' ' ')" | tee -a "$out"
exit "$rc"
