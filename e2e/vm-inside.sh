#!/usr/bin/env bash
# Runs inside the kernel-lane VM: basic sanity of the kernel, then node --test over the files given.
# KIPSEC_TEST_REPORTERS (set by the lane runner) adds reporter flags; results go to $VM_OUT.
set -uo pipefail
modprobe -q esp4 2>/dev/null; modprobe -q esp6 2>/dev/null; modprobe -q xfrm_user 2>/dev/null
modprobe -q xfrm_interface 2>/dev/null; modprobe -q veth 2>/dev/null; modprobe -q tun 2>/dev/null
modprobe -q xfrm4_tunnel 2>/dev/null; modprobe -q ip_tunnel 2>/dev/null
# A masquerading router namespace (agent-natt.test.ts): nftables' NAT chain and masquerade
# expression, and ctnetlink for the conntrack tool (list the mapped ports, flush a mapping).
for m in nf_tables nft_chain_nat nft_masq nf_conntrack_netlink; do modprobe -q "$m" 2>/dev/null; done
ip link set lo up
# Instantiate the ESP algorithms the tests use, once, in the background: the kernel's first
# lookup of e.g. rfc4106(gcm(aes)) autoloads modules through a series of modprobe runs, which
# under TCG with modules over 9p took ~30 s, and whoever installs the first SA waits for it in its
# netlink sendmsg (charon's worker, or the agent's event loop). Throw-away namespace, nothing left.
(
  t0=$(date +%s); ns=vm-warm-$$; ip netns add "$ns" || exit 0
  k() { printf "%0$(( $1 * 2 ))d" 0; }
  st() { ip -n "$ns" xfrm state add src 192.0.2.254 dst 192.0.2.253 proto esp spi "$1" mode tunnel "${@:2}" 2>/dev/null; }
  st 0x101 aead 'rfc4106(gcm(aes))' "0x$(k 36)" 128
  st 0x102 aead 'rfc7539esp(chacha20,poly1305)' "0x$(k 36)" 128
  st 0x103 enc 'cbc(aes)' "0x$(k 32)" auth-trunc 'hmac(sha256)' "0x$(k 32)" 128
  st 0x104 enc 'cbc(aes)' "0x$(k 32)" auth-trunc 'hmac(sha384)' "0x$(k 48)" 192
  st 0x105 enc 'cbc(aes)' "0x$(k 32)" auth-trunc 'hmac(sha512)' "0x$(k 64)" 256
  n=$(ip -n "$ns" xfrm state | grep -c '^src'); ip netns del "$ns"
  echo "vm: $n of 5 ESP algorithms instantiated in $(( $(date +%s) - t0 )) s"
) &
echo "vm: kernel $(uname -r), node $(node --version), $(nproc) cpus"
args=(--test --test-concurrency=1)
if [[ -n ${KIPSEC_TEST_REPORTERS:-} ]]; then
  # shellcheck disable=SC2206
  args+=(${KIPSEC_TEST_REPORTERS//@OUT@/$VM_OUT})
fi
ts=0; for f in "$@"; do [[ $f == *.ts ]] && ts=1; done
[[ $ts == 1 ]] && args=(--import tsx "${args[@]}")
node "${args[@]}" "$@"
