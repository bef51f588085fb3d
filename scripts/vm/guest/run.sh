#!/bin/bash
# The test:vm guest, pid 1 after init.sh's switch_root: mounts cgroup2 as
# systemd does, then runs the v2 subset (subset.sh) in three placements, one
# after the other, and powers off:
#
#   root        the root cgroup, its controllers enabled for children once, as
#               an administrator (or systemd) does; Brig never writes the root
#   delegated   a cgroup as systemd's Delegate=yes hands one to a service:
#               system.slice/brig-vm.service, memory, cpu and pids enabled for
#               it in the root's and system.slice's subtree_control, systemd's
#               xattrs (invocation_id, delegate=1) on it, and the tests' shell
#               inside it
#   namespace   a container: a cgroup namespace over the delegated
#               machine.slice/brig-vm-ctr (unshare -C with the shell inside it),
#               cgroup2 mounted again in a mount namespace of its own, so it
#               shows the container's cgroup as /
#
# Before any of them, with nothing enabled at the root yet, doctor-root checks
# what Brig says there. After each placement, outside-untouched.test.ts
# compares the tree outside the placement's cgroup (all of it, for root) with
# a snapshot taken before: nothing Brig made may be left, and nothing outside
# its cgroup may have been written.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$BRIG_VM_SHARE/vm.env"

CGROUP=/sys/fs/cgroup
CONTROLLERS="+memory +cpu +pids"
SERVICE=$CGROUP/system.slice/brig-vm.service
CONTAINER=$CGROUP/machine.slice/brig-vm-ctr

mkdir -p "$BRIG_VM_RESULTS"
: >"$BRIG_VM_STEPS"
say "guest up: kernel $(uname -r), $(nproc) cpus"
# systemd's options: cgroup namespaces are delegation boundaries, memory.low/min protect recursively.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 "$CGROUP" || say "cannot mount cgroup2"
# Signals that end processes, traced from the start: when a step fails
# because a process died, the log at the end says who sent what to whom.
TRACE=/sys/kernel/tracing
mount -t tracefs tracefs "$TRACE" && echo 'sig == 4 || sig == 6 || sig == 7 || sig == 9 || sig == 11 || sig == 15' >"$TRACE/events/signal/signal_generate/filter" &&
  echo 1 >"$TRACE/events/signal/signal_generate/enable" || say "cannot trace signals"

snapshot() {
  (cd "$BRIG_VM_REPO" && node scripts/vm/guest/cgroup-tree.mjs "$CGROUP") >"$BRIG_VM_SHARE/$1.before.json"
}

# outside PLACEMENT CGROUP: the tree outside CGROUP is as the snapshot was, and nothing of Brig's is left inside.
outside() {
  BRIG_VM_PLACEMENT=$1 BRIG_VM_CGROUP=$2 BRIG_VM_SNAPSHOT="$BRIG_VM_SHARE/$1.before.json" \
    step "$1" outside test/vm/outside-untouched.test.ts
}

remove_tree() {
  find "$1" -depth -type d -exec rmdir {} + 2>/dev/null || say "could not remove every cgroup under $1"
}

# What systemd leaves on a unit's cgroup: an invocation id on every unit, delegate=1 with Delegate=yes.
systemd_marks() {
  /usr/bin/python3 -c '
import os, sys
os.setxattr(sys.argv[1], "trusted.invocation_id", os.urandom(16).hex().encode())
os.setxattr(sys.argv[1], "trusted.delegate", b"1")' "$1"
}

BRIG_VM_PLACEMENT=root-unprepared BRIG_VM_CGROUP=$CGROUP step root-unprepared doctor test/vm/doctor-root.test.ts

echo "$CONTROLLERS" >"$CGROUP/cgroup.subtree_control"
snapshot root
BRIG_VM_PLACEMENT=root BRIG_VM_CGROUP=$CGROUP bash "$BRIG_VM_REPO/scripts/vm/guest/subset.sh" root
outside root "$CGROUP"

mkdir -p "$SERVICE"
echo "$CONTROLLERS" >"$CGROUP/system.slice/cgroup.subtree_control"
systemd_marks "$SERVICE"
snapshot delegated
(
  echo "$BASHPID" >"$SERVICE/cgroup.procs"
  BRIG_VM_PLACEMENT=delegated BRIG_VM_CGROUP=$SERVICE exec bash "$BRIG_VM_REPO/scripts/vm/guest/subset.sh" delegated
)
outside delegated "$SERVICE"
remove_tree "$CGROUP/system.slice"

mkdir -p "$CONTAINER"
echo "$CONTROLLERS" >"$CGROUP/machine.slice/cgroup.subtree_control"
snapshot namespace
(
  echo "$BASHPID" >"$CONTAINER/cgroup.procs"
  exec unshare --cgroup --mount --propagation private bash -c '
    umount /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup || echo "BRIG-VM: cannot remount cgroup2 in the namespace"
    BRIG_VM_PLACEMENT=namespace BRIG_VM_CGROUP=/sys/fs/cgroup exec bash "$0" namespace' \
    "$BRIG_VM_REPO/scripts/vm/guest/subset.sh"
)
outside namespace "$CONTAINER"
remove_tree "$CGROUP/machine.slice"

# npm run test:vm -- --measure: figures for issue 11, not tests.
[ "${BRIG_VM_MEASURE:-0}" = 1 ] && bash "$BRIG_VM_REPO/scripts/vm/measure/cgroup-join.sh"

# After a failed step: the fatal signals that reached a node process (every
# test, Brig process and brig command is one; sweep.test.ts kills one on
# purpose), by whom.
if grep -qv ' 0$' "$BRIG_VM_STEPS"; then
  grep -E 'signal_generate: .*comm=node ' "$TRACE/trace" | while read -r line; do say "signal: $line"; done
fi
# A crash of a process (node itself, say) is logged at a level the console leaves out.
dmesg | grep -E 'segfault at|traps:|general protection|invalid opcode' | while read -r line; do say "kernel: $line"; done

sync
say "finished"
echo finished >"$BRIG_VM_SHARE/finished"
sync
exec /bin/busybox poweroff -f
