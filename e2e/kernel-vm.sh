#!/usr/bin/env bash
# kernel-vm.sh SCRIPT [ARGS...] — the kernel lane: run SCRIPT inside a throw-away VM that boots
# Debian's stock kernel (XFRM + ESP + GCM + XFRM interfaces, veth, tun as modules) under QEMU
# software emulation. The VM sees this machine's root filesystem read-only over 9p with a tmpfs
# overlay for writes, so node, iproute2, strongSwan and this checkout are all there unchanged.
#
# Why a VM: the kernel these machines run has no ESP (`ip xfrm state add ... proto esp` fails),
# and KVM is not usable, so TCG emulation it is: a boot costs ~25 s and everything inside runs a
# few times slower. Run many test files per boot (see e2e/vm-run.sh).
#
# Exit status = SCRIPT's exit status inside the VM (124 if KVM_TIMEOUT ran out, 125 if the VM died
# before SCRIPT ended).
# Files SCRIPT writes to $VM_OUT inside the VM appear in $KVM_OUT (a host folder) afterwards.
# Env: KVM_MEM (MiB, 4096: the overlay tmpfs and many node processes share it), KVM_CPUS (2), KVM_CACHE (~/.cache/kipsec/kernel-vm),
#      KVM_ACCEL (tcg; "tcg,thread=single" emulates both vCPUs in one host thread), KVM_CPU (QEMU -cpu model),
#      KVM_TIMEOUT (seconds, 1500), KVM_OUT (host folder for results; default: none),
#      KVM_NIC (QEMU's -nic value; default: none, the guest has no network device at all). The
#      cluster lane passes an isolated user-mode NIC whose only way out is one forwarded port:
#        user,model=virtio-net-pci,restrict=on,guestfwd=tcp:10.0.2.100:6443-cmd:socat - TCP:127.0.0.1:PORT
#      (restrict=on: the guest reaches nothing but the guestfwd; the guest must `modprobe virtio_net`).
# Needs root and, on first use only, Debian's package mirror (kernel + busybox, ~120 MB).
set -euo pipefail
script=$(readlink -f "${1:?usage: kernel-vm.sh SCRIPT [ARGS...]}"); shift
cache=${KVM_CACHE:-$HOME/.cache/kipsec/kernel-vm}
mkdir -p "$cache"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need qemu-system-x86_64 || ! need cpio || ! need depmod; then
  echo "kernel-vm: installing qemu-system-x86, cpio, kmod from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 cpio kmod >/dev/null
fi

# 1. kernel + modules: Debian's linux-image-amd64 metapackage names the current ABI.
if [[ ! -f $cache/kernel.ok ]]; then
  echo "kernel-vm: fetching Debian's kernel into $cache (first run only)" >&2
  ( cd "$cache"
    [[ -n $(ls /var/lib/apt/lists/*Packages 2>/dev/null) ]] || apt-get update -qq
    pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)
    [[ -n $pkg ]] || { echo "kernel-vm: cannot resolve linux-image-amd64" >&2; exit 1; }
    rm -rf root bb ./*.deb
    apt-get download -qq "$pkg" busybox-static 2>&1 | grep -v unsandboxed || true
    dpkg -x linux-image-*.deb root; mkdir -p bb; dpkg -x busybox-static_*.deb bb
    rm -f ./*.deb
    kver=$(ls root/lib/modules); depmod -b "$cache/root" "$kver"
    rm -f initrd-*.gz
    echo "$kver" > kernel.ok )
fi
kver=$(cat "$cache/kernel.ok")

# 2. initramfs: busybox + the modules that mount the host root over 9p, then switch_root.
#    Keyed by this script's hash, so a change to the init below rebuilds it.
initrd=$cache/initrd-$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12).gz
if [[ ! -f $initrd ]]; then
  d=$(mktemp -d); mkdir -p "$d"/{bin,dev,proc,sys,lower,upper,newroot,mods}
  cp "$cache/bb/bin/busybox" "$d/bin/"
  for m in virtio_pci 9pnet_virtio 9p overlay; do
    modprobe -d "$cache/root" -S "$kver" --show-depends "$m" | awk '{print $2}'
  done | awk '!seen[$0]++' | while read -r f; do cp "$f" "$d/mods/"; basename "$f" >> "$d/mods/order"; done
  cat > "$d/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m; done
o=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o $o,ro hostroot /lower
mount -t tmpfs tmpfs /upper; mkdir -p /upper/u /upper/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /newroot
mkdir -p /newroot/lib/modules /newroot/vm-io
mount -t 9p -o $o,ro mods /newroot/lib/modules
mount -t 9p -o $o io /newroot/vm-io
mount --move /proc /newroot/proc; mount --move /sys /newroot/sys; mount --move /dev /newroot/dev
ln -s /proc/self/fd /newroot/dev/fd   # devtmpfs has no /dev/fd: bash's <(...) and /dev/fd/N need it
mount -t tmpfs tmpfs /newroot/run
exec switch_root /newroot /bin/sh -c '
  export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin VM_OUT=/vm-io/out KIPSEC_IN_VM=1
  [ -f /vm-io/env ] && . /vm-io/env
  cd "$(cat /vm-io/cwd)"; set -- $(cat /vm-io/args)
  : > /vm-io/booted
  /bin/bash /vm-io/script "$@"; echo $? > /vm-io/rc; sync; poweroff -f'
INIT
  chmod +x "$d/init"; (cd "$d" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$initrd"); rm -rf "$d"
fi

# 3. run. The io folder carries the script, its args, cwd, selected env and results back.
io=$(mktemp -d); trap 'rm -rf "$io"' EXIT
mkdir -p "$io/out"
cp "$script" "$io/script"; pwd > "$io/cwd"; echo "$*" > "$io/args"; echo 125 > "$io/rc"
env | grep -E '^(KIPSEC_[A-Z_]*|NODE_OPTIONS|CI)=' | sed -e "s/'/'\\\\''/g" -e "s/=\(.*\)/='\1'/" -e 's/^/export /' > "$io/env" || true
# No NIC unless asked for: without -nic QEMU would add an unrestricted user-mode NIC by default.
nic=(-nic none); if [[ -n ${KVM_NIC:-} ]]; then nic=(-nic "$KVM_NIC"); fi
# A TCG boot very rarely hangs before init runs (seen once in many boots: QEMU busy, no output for
# minutes). The init marks the boot done in io/booted; without it within KVM_BOOT_TIMEOUT the VM is
# killed and booted once more, rather than burning the whole KVM_TIMEOUT.
boot() {
  rm -f "$io/booted" "$io/qemu.pid"
  ( timeout "${KVM_TIMEOUT:-1500}" qemu-system-x86_64 -accel "${KVM_ACCEL:-tcg}" ${KVM_CPU:+-cpu "$KVM_CPU"} -m "${KVM_MEM:-4096}" -smp "${KVM_CPUS:-2}" \
    -nographic -no-reboot "${nic[@]}" -kernel "$cache/root/boot/vmlinuz-$kver" -initrd "$initrd" -pidfile "$io/qemu.pid" \
    -append "console=ttyS0 quiet panic=-1" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$cache/root/lib/modules,mount_tag=mods,security_model=none,readonly=on" \
    -virtfs "local,path=$io,mount_tag=io,security_model=none" </dev/null; echo $? > "$io/qemu-rc" ) \
    | sed -u -e 's/\x1bc//g' -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\r$//' -e 's/^.*Booting from ROM\.\.\.//' \
            -e '/^\s*\[ *[0-9.]*\]/d' -e '/SeaBIOS\|iPXE\|Press Ctrl-B/d' &
  local pipe=$! waited=0
  while [[ ! -f $io/booted ]] && kill -0 "$pipe" 2>/dev/null && (( waited < ${KVM_BOOT_TIMEOUT:-300} )); do sleep 1; waited=$((waited + 1)); done
  if [[ ! -f $io/booted ]] && kill -0 "$pipe" 2>/dev/null; then
    echo "kernel-vm: the VM did not boot within ${KVM_BOOT_TIMEOUT:-300} s (KVM_BOOT_TIMEOUT); killing it" >&2
    [[ -f $io/qemu.pid ]] && kill "$(cat "$io/qemu.pid")" 2>/dev/null
    wait "$pipe" 2>/dev/null
    return 1
  fi
  wait "$pipe" 2>/dev/null || true
}
boot || { echo "kernel-vm: booting once more" >&2; echo 125 > "$io/rc"; boot || true; }
if [[ -n ${KVM_OUT:-} ]]; then mkdir -p "$KVM_OUT"; cp -r "$io/out/." "$KVM_OUT/" 2>/dev/null || true; fi
if [[ $(cat "$io/qemu-rc" 2>/dev/null) == 124 ]]; then
  echo "kernel-vm: the VM ran out of time after ${KVM_TIMEOUT:-1500} s (KVM_TIMEOUT) before SCRIPT ended" >&2
  exit 124
fi
exit "$(cat "$io/rc")"
