#!/usr/bin/env bash
# bench/handshake-vs-strongswan.sh [--rounds N] [--slice SEC] [--ramp SEC] [--concurrency N] [--sas N] [--warmup SEC] | [--burst N]
# Runs bench/handshake-vs-strongswan.ts inside the kernel-lane VM (e2e/kernel-vm.sh): the host
# kernel of these machines has no ESP, and both responders install real Child SAs.
# On the host: bundle the bench and the agent CLI with esbuild (tsx transpiling ~150 modules per
# process under TCG emulation costs minutes), print the host's load, boot the VM with this script.
# In the VM: load the XFRM/ESP modules and run the bundle. Takes ~10-20 minutes with the boot.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)

if [[ -z ${KIPSEC_IN_VM:-} ]]; then
  cd "$root"
  # Both bundles two levels below the checkout, where src/xfrm/native.ts finds native/build.
  bench=build/bench-hs-$$; agent=build/bench-agent-$$
  trap 'rm -rf "$root/$bench" "$root/$agent"' EXIT
  esb=(node_modules/.bin/esbuild --bundle --platform=node --format=esm --packages=external --target=node20 --log-level=warning)
  "${esb[@]}" bench/handshake-vs-strongswan.ts --outfile="$bench/handshake-vs-strongswan.mjs"
  # The IKE crypto worker is a second entry point: crypto-worker.mjs beside the chunks (src/ike/crypto/pool.ts).
  "${esb[@]}" src/cli/main.ts src/ike/crypto/crypto-worker.ts --splitting --outdir="$agent" --entry-names='[name]' --out-extension:.js=.mjs
  echo "host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) before the VM boots"
  rc=0; export KVM_TIMEOUT=${KVM_TIMEOUT:-5400}  # ~45 min with 1,000 SAs under TCG
  # The responders' logs and the printed figures land here after the run.
  export KVM_OUT=${KVM_OUT:-$root/.lane-results/handshake-vs-strongswan}
  KIPSEC_BENCH_BUNDLE=$root/$bench/handshake-vs-strongswan.mjs KIPSEC_AGENT_BUNDLE=$root/$agent/main.mjs \
    bash e2e/kernel-vm.sh "$root/bench/handshake-vs-strongswan.sh" "$@" || rc=$?
  echo "host: load $(cut -d' ' -f1-3 /proc/loadavg) after the VM run; logs and figures in $KVM_OUT"
  exit "$rc"
fi

for m in esp4 xfrm_user xfrm4_tunnel veth gcm ghash_generic aes_generic ctr seqiv echainiv; do modprobe -q "$m" 2>/dev/null || true; done
ip link set lo up
# KIPSEC_BENCH_CORE=1: core dumps of crashing processes into $VM_OUT (the host's KVM_OUT), for gdb.
if [[ -n ${KIPSEC_BENCH_CORE:-} && -n ${VM_OUT:-} ]]; then
  ulimit -c unlimited; echo "$VM_OUT/core.%e.%p" > /proc/sys/kernel/core_pattern
fi
exec node "${KIPSEC_BENCH_BUNDLE:?}" "$@"
