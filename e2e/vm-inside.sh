#!/usr/bin/env bash
# Runs inside the kernel-lane VM: basic sanity of the kernel, then node --test over the files given.
# KIPSEC_TEST_REPORTERS (set by the lane runner) adds reporter flags; results go to $VM_OUT.
set -uo pipefail
modprobe -q esp4 2>/dev/null; modprobe -q esp6 2>/dev/null; modprobe -q xfrm_user 2>/dev/null
modprobe -q xfrm_interface 2>/dev/null; modprobe -q veth 2>/dev/null; modprobe -q tun 2>/dev/null
modprobe -q xfrm4_tunnel 2>/dev/null; modprobe -q ip_tunnel 2>/dev/null
ip link set lo up
echo "vm: kernel $(uname -r), node $(node --version), $(nproc) cpus"
args=(--test --test-concurrency=1)
if [[ -n ${KIPSEC_TEST_REPORTERS:-} ]]; then
  # shellcheck disable=SC2206
  args+=(${KIPSEC_TEST_REPORTERS//@OUT@/$VM_OUT})
fi
ts=0; for f in "$@"; do [[ $f == *.ts ]] && ts=1; done
[[ $ts == 1 ]] && args=(--import tsx "${args[@]}")
node "${args[@]}" "$@"
