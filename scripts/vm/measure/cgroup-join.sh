#!/bin/bash
# In the test:vm guest, after the suite (npm run test:vm -- --measure): what
# placing a new process into its cgroup costs on this kernel, clone3 with
# CLONE_INTO_CGROUP against a clone and a write to cgroup.procs (issue 11).
# cgroup-join.c does the measuring; this compiles it with the host's own
# compiler (the guest's root is the host's), runs it in a scratch cgroup of
# the VM's root after 50 ms without a migration and with none, then once
# more with cgroup2 remounted with favordynmods, and writes the figures to
# the results share for the host to print.
set -uo pipefail
. "$(dirname "$0")/../guest/lib.sh"

CGROUP=/sys/fs/cgroup
SCRATCH=$CGROUP/brig-vm-measure
PROGRAM=/tmp/cgroup-join
OUT=$BRIG_VM_SHARE/measure.txt
SAMPLES=40
# As guest/run.sh mounts it.
MOUNT_OPTIONS=nsdelegate,memory_recursiveprot

cc -O2 -Wall -Wextra -Werror -o "$PROGRAM" "$BRIG_VM_REPO/scripts/vm/measure/cgroup-join.c" || { say "measure: cannot compile cgroup-join.c"; exit 1; }
mkdir -p "$SCRATCH"
{
  echo "kernel $(uname -r), cgroup2 mounted $(awk '$2 == "/sys/fs/cgroup" { print $4 }' /proc/mounts)"
  "$PROGRAM" "$SCRATCH" "$SAMPLES" 50
  "$PROGRAM" "$SCRATCH" "$SAMPLES" 0
  # A remount sets every root flag anew: run.sh's options are repeated each time.
  if mount -o "remount,$MOUNT_OPTIONS,favordynmods" "$CGROUP" 2>/dev/null; then
    echo "remounted with favordynmods"
    "$PROGRAM" "$SCRATCH" "$SAMPLES" 50
    mount -o "remount,$MOUNT_OPTIONS" "$CGROUP" || say "measure: cannot remount cgroup2 without favordynmods"
  else
    echo "no favordynmods on this kernel"
  fi
} | tee "$OUT" | while read -r line; do say "measure: $line"; done
rmdir "$SCRATCH"
