#!/usr/bin/env bash
# cluster-inside.sh FILE.test.ts... | SCRIPT.sh [ARGS...] — runs inside the kernel-lane VM for the
# cluster lane (scripts/run-lanes.mjs boots it with KVM_NIC set, see e2e/kernel-vm.sh):
#  1. the kernel modules the lane's nodes, pods and wire use; loopback up;
#  2. the guest's only NIC (QEMU user networking with restrict=on: nothing is reachable but
#     10.0.2.100:6443, which QEMU forwards to the kube-apiserver running on the host);
#  3. the apiserver bridge: a unix socket /run/kipsec-lane/kube.sock → 10.0.2.100:6443, and
#     127.0.0.1:6443 → that socket in the guest's root namespace. Unix sockets cross network
#     namespaces, so e2e/lib/lane-kube.ts starts the same 127.0.0.1:6443 listener in every node
#     namespace and every process anywhere uses https://127.0.0.1:6443, the address the
#     apiserver's serving certificate names (SAN IP:127.0.0.1);
#  4. node --test over the given files (reporters from KIPSEC_TEST_REPORTERS, results in $VM_OUT),
#     or, for ad-hoc probes, bash SCRIPT.sh ARGS after the same setup.
# Entropy for the first getrandom() callers is credited by e2e/vm/agent-vm.ts prepareVm(), which
# e2e/lib/lane-kube.ts calls.
set -uo pipefail
t0=$(date +%s)
for m in esp4 esp6 xfrm_user xfrm_interface xfrm4_tunnel ip_tunnel veth tun vxlan bridge \
         nf_tables nft_chain_nat nft_masq nf_conntrack_netlink virtio_net; do
  modprobe -q "$m" 2>/dev/null || echo "cluster: modprobe $m failed" >&2
done
ip link set lo up

# 2. The NIC virtio_net just created (no udev here: it keeps the kernel's name).
nic=
for _ in $(seq 1 50); do
  for d in /sys/class/net/*; do
    [[ $(basename "$(readlink -f "$d/device/driver" 2>/dev/null)") == virtio_net ]] && nic=$(basename "$d")
  done
  [[ -n $nic ]] && break
  sleep 0.1
done
if [[ -z $nic ]]; then
  echo "cluster: no virtio-net NIC in the VM: kernel-vm.sh must be run with KVM_NIC (scripts/run-lanes.mjs sets it)" >&2
  exit 1
fi
ip addr add 10.0.2.15/24 dev "$nic"
ip link set "$nic" up

# 3. The apiserver bridge in the root namespace. socat forks one child per connection.
mkdir -p /run/kipsec-lane; chmod 700 /run/kipsec-lane
socat UNIX-LISTEN:/run/kipsec-lane/kube.sock,fork,mode=600 TCP:10.0.2.100:6443 </dev/null >/run/kipsec-lane/uplink.log 2>&1 &
echo $! > /run/kipsec-lane/uplink.pid
socat TCP-LISTEN:6443,bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:/run/kipsec-lane/kube.sock </dev/null >/run/kipsec-lane/root-bridge.log 2>&1 &
echo $! > /run/kipsec-lane/root-bridge.pid
for _ in $(seq 1 50); do
  [[ -S /run/kipsec-lane/kube.sock ]] && ss -Hltn 'sport = :6443' | grep -q 127.0.0.1 && break
  sleep 0.1
done
if [[ ! -S /run/kipsec-lane/kube.sock ]]; then
  echo "cluster: the apiserver bridge did not start; socat said:" >&2
  cat /run/kipsec-lane/*.log >&2
  exit 1
fi
echo "cluster: kernel $(uname -r), node $(node --version), $(nproc) cpus, NIC $nic, apiserver bridge up in $(( $(date +%s) - t0 )) s"

if [[ ${1:-} == *.sh ]]; then
  script=$1; shift
  exec bash "$script" "$@"
fi
args=(--test --test-concurrency=1)
if [[ -n ${KIPSEC_TEST_REPORTERS:-} ]]; then
  # shellcheck disable=SC2206
  args+=(${KIPSEC_TEST_REPORTERS//@OUT@/$VM_OUT})
fi
ts=0; for f in "$@"; do [[ $f == *.ts ]] && ts=1; done
[[ $ts == 1 ]] && args=(--import tsx "${args[@]}")
node "${args[@]}" "$@"
rc=$?
# The console hides kernel messages: say here if the kernel killed a process for memory.
oom=$(dmesg 2>/dev/null | grep -iE 'out of memory|oom-kill|killed process' | tail -5)
[[ -n $oom ]] && printf 'cluster: the kernel killed processes for memory:\n%s\n' "$oom" >&2
free -m | sed 's/^/cluster: /' >&2
exit $rc
