#!/usr/bin/env bash
# capture.sh: record real IKEv2 traffic between two strongSwan 5.9 charons (Debian packages) for
# the codec's golden tests, together with the key material charon logs at `ike 4`.
#
#   bash test/golden/ike/capture.sh [OUTDIR]        (root; default OUTDIR = this directory)
#
# Two network namespaces kt-<pid>-a (192.0.2.1, initiator) and kt-<pid>-b (192.0.2.2, responder)
# joined by a veth pair; each runs its own charon in libipsec mode (userspace ESP over TUN, so no
# kernel ESP is needed; it always encapsulates ESP in UDP 4500). tcpdump writes a pcap on the
# initiator's veth; pcap-to-json.ts turns pcap + both charon logs into one JSON per scenario.
# Scenarios (one pair of fresh charons each):
#   psk-gcm   PSK, aes256gcm16-prfsha384-x25519 (AEAD, RFC 5282)
#   psk-cbc   PSK, aes128-sha256-modp2048 (AES-CBC + HMAC-SHA2-256-128)
#   cert-ecdsa      ECDSA P-256 certificates (RFC 7427 signature auth), aes256gcm16-prfsha256-ecp256
#   cert-ecdsa-frag same, with charon.fragment_size = 400 so IKE_AUTH travels in SKF (RFC 7383)
#   psk-invalid-ke  initiator offers x25519 first, responder wants ecp256: INVALID_KE_PAYLOAD retry
# Each scenario: IKE_SA_INIT + IKE_AUTH (initiate child), a DPD liveness check (INFORMATIONAL),
# a Child SA rekey and an IKE SA rekey (CREATE_CHILD_SA), then a delete (INFORMATIONAL).
# The key material is throw-away: fresh keys and certificates every run, PSK is public test data.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(readlink -f "${1:-$here}")
repo=$(cd "$here/../../.." && pwd)
tag="kt-$$"
nsa="$tag-a"; nsb="$tag-b"
work=$(mktemp -d /tmp/kipsec-capture.XXXXXX)
tcpdump_pid=""

cleanup() {
  set +e
  [[ -n $tcpdump_pid ]] && kill "$tcpdump_pid" 2>/dev/null
  for side in a b; do
    [[ -f $work/cur/$side/charon.pid ]] && kill "$(cat "$work/cur/$side/charon.pid")" 2>/dev/null
  done
  sleep 0.5
  ip netns del "$nsa" 2>/dev/null; ip netns del "$nsb" 2>/dev/null
}
trap cleanup EXIT

ip netns add "$nsa"; ip netns add "$nsb"
ip link add "$tag-va" type veth peer name "$tag-vb"
ip link set "$tag-va" netns "$nsa"; ip link set "$tag-vb" netns "$nsb"
ip -n "$nsa" addr add 192.0.2.1/24 dev "$tag-va"; ip -n "$nsb" addr add 192.0.2.2/24 dev "$tag-vb"
for ns in "$nsa" "$nsb"; do ip -n "$ns" link set lo up; done
# The traffic-selector addresses live on lo so libipsec can install its routes via ipsec0.
ip -n "$nsa" addr add 10.1.0.1/32 dev lo; ip -n "$nsb" addr add 10.2.0.1/32 dev lo
ip -n "$nsa" link set "$tag-va" up; ip -n "$nsb" link set "$tag-vb" up

# ECDSA P-256 CA and one certificate per side (strongswan-pki).
pkid="$work/pki"; mkdir -p "$pkid"
pki --gen --type ecdsa --size 256 --outform pem > "$pkid/ca.key"
pki --self --ca --lifetime 3650 --in "$pkid/ca.key" --type ecdsa \
  --dn "C=CH, O=kipsec test, CN=kipsec golden CA" --outform pem > "$pkid/ca.crt"
for side in a b; do
  pki --gen --type ecdsa --size 256 --outform pem > "$pkid/$side.key"
  pki --pub --in "$pkid/$side.key" --type ecdsa |
    pki --issue --cacert "$pkid/ca.crt" --cakey "$pkid/ca.key" --lifetime 3650 \
      --dn "C=CH, O=kipsec test, CN=$side.kipsec.test" --san "$side.kipsec.test" --outform pem > "$pkid/$side.crt"
done

# write_conf SIDE AUTH PROPOSALS ESP_PROPOSALS FRAGSIZE
write_conf() {
  local side=$1 auth=$2 props=$3 esp=$4 frag=$5 dir="$work/cur/$1"
  local me=192.0.2.1 peer=192.0.2.2 lts=10.1.0.1/32 rts=10.2.0.1/32 other=b
  if [[ $side == b ]]; then me=192.0.2.2; peer=192.0.2.1; lts=10.2.0.1/32; rts=10.1.0.1/32; other=a; fi
  mkdir -p "$dir/x509" "$dir/x509ca" "$dir/private"
  cat > "$dir/strongswan.conf" <<CONF
charon {
  load = random nonce openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey curve25519 gmp hmac gcm aes sha1 sha2 kdf kernel-libipsec kernel-netlink socket-default vici updown
  fragment_size = $frag
  filelog {
    log {
      path = $dir/charon.log
      ike_name = yes
      default = 1
      ike = 4
      cfg = 2
      enc = 1
    }
  }
  plugins { vici { socket = unix://$dir/charon.vici } }
}
CONF
  local localauth remoteauth lid rid secrets=""
  if [[ $auth == psk ]]; then
    localauth="auth = psk"; remoteauth="auth = psk"; lid=$me; rid=$peer
    secrets="ike-1 {
    id-a = 192.0.2.1
    id-b = 192.0.2.2
    secret = \"kipsec golden capture psk 0123456789\"
  }"
  else
    cp "$pkid/ca.crt" "$dir/x509ca/"; cp "$pkid/$side.crt" "$dir/x509/"; cp "$pkid/$side.key" "$dir/private/"
    localauth="auth = pubkey
      certs = $side.crt"; remoteauth="auth = pubkey"
    lid="$side.kipsec.test"; rid="$other.kipsec.test"
  fi
  cat > "$dir/swanctl.conf" <<CONF
connections {
  t {
    version = 2
    local_addrs = $me
    remote_addrs = $peer
    proposals = $props
    fragmentation = yes
    dpd_delay = 2s
    local {
      $localauth
      id = $lid
    }
    remote {
      $remoteauth
      id = $rid
    }
    children {
      c {
        local_ts = $lts
        remote_ts = $rts
        esp_proposals = $esp
        start_action = none
      }
    }
  }
}
secrets {
  $secrets
}
CONF
}

start_charon() {
  local ns=$1 dir=$2
  STRONGSWAN_CONF="$dir/strongswan.conf" ip netns exec "$ns" unshare -m \
    sh -c 'mount -t tmpfs tmpfs /run && exec /usr/lib/ipsec/charon' >"$dir/charon.out" 2>&1 &
  echo $! > "$dir/charon.pid"
  for _ in $(seq 50); do [[ -S $dir/charon.vici ]] && break; sleep 0.1; done
  [[ -S $dir/charon.vici ]] || { cat "$dir/charon.out" "$dir/charon.log" 2>/dev/null; exit 1; }
  ip netns exec "$ns" swanctl --load-all --uri "unix://$dir/charon.vici" --file "$dir/swanctl.conf" >"$dir/load.out" 2>&1
}
sw() { local ns=$1 dir=$2; shift 2; ip netns exec "$ns" swanctl "$@" --uri "unix://$dir/charon.vici"; }

# scenario NAME AUTH IKE_PROPOSALS ESP_PROPOSALS FRAGSIZE [INITIATOR_IKE_PROPOSALS]
scenario() {
  local name=$1
  rm -rf "$work/cur"; mkdir -p "$work/cur"
  write_conf a "$2" "${6:-$3}" "$4" "$5"; write_conf b "$2" "$3" "$4" "$5"
  ip netns exec "$nsa" tcpdump -i "$tag-va" -U -s 0 -w "$work/cur/cap.pcap" udp >"$work/cur/tcpdump.out" 2>&1 &
  tcpdump_pid=$!
  sleep 1
  start_charon "$nsa" "$work/cur/a"; start_charon "$nsb" "$work/cur/b"
  sw "$nsa" "$work/cur/a" --initiate --child c >"$work/cur/steps.log"
  sw "$nsa" "$work/cur/a" --list-sas --raw >"$work/cur/sas-1.txt"
  sleep 3.5                                                  # > dpd_delay: one liveness check
  sw "$nsa" "$work/cur/a" --rekey --child c >>"$work/cur/steps.log"; sleep 1
  sw "$nsa" "$work/cur/a" --rekey --ike t >>"$work/cur/steps.log"; sleep 1
  sw "$nsa" "$work/cur/a" --list-sas --raw >"$work/cur/sas-2.txt"
  sw "$nsa" "$work/cur/a" --terminate --ike t >>"$work/cur/steps.log"; sleep 1
  kill "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true; tcpdump_pid=""
  for side in a b; do kill "$(cat "$work/cur/$side/charon.pid")"; rm -f "$work/cur/$side/charon.pid"; done
  sleep 0.5
  mkdir -p "$work/$name"; cp -r "$work/cur/." "$work/$name/"
  (cd "$repo" && node --import tsx "$here/pcap-to-json.ts" "$name" "$work/$name" "$2" "$3" "$4" "$5" "$out/$name.json" "${6:-$3}")
  cp "$work/$name/cap.pcap" "$out/$name.pcap"
  echo "captured $name -> $out/$name.json"
}

scenario psk-gcm psk aes256gcm16-prfsha384-x25519 aes256gcm16 1280
scenario psk-cbc psk aes128-sha256-modp2048 aes128-sha256 1280
scenario cert-ecdsa cert aes256gcm16-prfsha256-ecp256 aes256gcm16 1280
scenario cert-ecdsa-frag cert aes256gcm16-prfsha256-ecp256 aes256gcm16 400
# The initiator's first proposal (and so its KE) uses x25519; the responder only accepts ecp256 and
# answers IKE_SA_INIT with N(INVALID_KE_PAYLOAD, 19) alone; the initiator retries with ecp256.
scenario psk-invalid-ke psk aes256gcm16-prfsha256-ecp256 aes256gcm16 1280 aes256gcm16-prfsha256-x25519-ecp256
cp "$pkid/ca.crt" "$out/ca.crt"
echo "work files kept in $work"
