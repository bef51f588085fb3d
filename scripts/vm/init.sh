#!/bin/busybox sh
# /init of the test:vm initramfs (scripts/vm/initramfs.ts packs it with a
# static busybox and the modules of the kernel being booted). It builds a
# root from the host's own filesystem and hands over to the guest runner:
#
#   /host      the host's /, read-only over virtio-9p (tag "host")
#   /newroot   an overlay: /host below, a tmpfs above, so the tests can
#              write anywhere and nothing reaches the host
#   /run/brig-vm in the new root: the one writable share (tag "brigvm"),
#              where vm.env comes in and the results go out
#   the checkout, at its own path in the new root: read-only over 9p (tag
#              "repo"), on top of the fresh /tmp and /run, where a CI's
#              clone may live
#
# Any failure powers the VM off at once: the host sees no results and says
# so, rather than waiting for its timeout.
set -u
/bin/busybox --install -s /bin

fail() {
  echo "BRIG-VM: init failed: $*"
  poweroff -f
}

mount -t proc proc /proc || fail "mount proc"
mount -t sysfs sysfs /sys || fail "mount sysfs"
mount -t devtmpfs devtmpfs /dev || fail "mount devtmpfs"

# Dependencies come first in the list (initramfs.ts orders it from modules.dep).
while read -r module; do
  insmod "/modules/$module.ko" || fail "insmod $module"
done < /modules/order

# A bigger msize and cache=loose make reading the host's files (node, the
# repository, node_modules) several times faster; the host's root does not
# change under the VM while it runs.
mkdir -p /host /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose host /host || fail "mount the host's root over 9p"
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "mount the overlay's tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot || fail "mount the overlay root"

# The host's /tmp and /run are its own business: fresh ones here.
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp || fail "mount /tmp"
mount -t tmpfs -o mode=0755 tmpfs /newroot/run || fail "mount /run"
mkdir -p /newroot/run/brig-vm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 brigvm /newroot/run/brig-vm || fail "mount the results share"

mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev

[ -r /newroot/run/brig-vm/vm.env ] || fail "no vm.env in the results share"
. /newroot/run/brig-vm/vm.env
# The checkout again, at its own path: it may be under the /tmp or /run just replaced.
mkdir -p "/newroot$BRIG_VM_REPO" || fail "make the checkout's mount point"
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose repo "/newroot$BRIG_VM_REPO" || fail "mount the checkout over 9p"
exec switch_root /newroot /bin/bash "$BRIG_VM_REPO/scripts/vm/guest/run.sh"
