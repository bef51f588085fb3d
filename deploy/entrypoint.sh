#!/bin/sh
# The image's entrypoint: prepares the container's cgroup view for Brig, then
# runs `brig <part>` under tini (pid 1: reaps orphans, passes signals on).
#
# Brig creates its slot cgroups below the container's own cgroup. Container
# engines mount the cgroup filesystem read-only into unprivileged containers
# (Docker, podman, containerd alike, and no flag of theirs makes it writable
# short of --privileged), so a part that runs sandboxes remounts it writable.
# With a private cgroup namespace (--cgroupns=private; the default on cgroup v2)
# the mount's root is the container's own cgroup: the remount gives the
# container its own subtree, nothing of the host's. It needs CAP_SYS_ADMIN,
# which the worker needs anyway (it mounts each workspace's tmpfs).
#
# On cgroup v2 a cgroup that hands controllers to children may hold no process
# of its own (the "no internal processes" rule), and the container's processes
# start in its root: they move to a child, init/, first.
set -u

BRIG=/opt/brig/bin/brig.js
CGROUP_ROOT=/sys/fs/cgroup
V2_CONTROLLERS="memory cpu pids"

say() { echo "brig-entrypoint: $*" >&2; }

# "<mount point> <fs type> <per-mount options> <super options>" for each
# mount (proc(5): optional fields end at "-", which the fs type, the source
# and the super options follow; a v1 cgroup's super options name its controllers).
mounts() {
  awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { print $5, $(i + 1), $6, $(i + 3); break } }' /proc/self/mountinfo
}

# Makes the mount at $1 writable if it is not. A failure is reported, not
# fatal: Brig itself then says precisely what it cannot do (brig doctor too).
remount_writable() {
  case ",$(mounts | awk -v point="$1" '$1 == point { print $3 }')," in
    *,ro,*) mount -o remount,bind,rw "$1" "$1" 2>/dev/null \
      || say "cannot make $1 writable: a worker needs CAP_SYS_ADMIN, and a seccomp and AppArmor profile that allow mount (see the README's Deploy section)" ;;
  esac
}

prepare_v1() {
  # One mount per hierarchy; only those of the controllers Brig uses (memory,
  # cpu, cpuacct, pids, co-mounted or not) are made writable.
  for point in $(mounts | awk '$2 == "cgroup" && (","$4",") ~ /,(memory|cpu|cpuacct|pids),/ { print $1 }'); do
    remount_writable "$point"
  done
}

prepare_v2() {
  remount_writable "$CGROUP_ROOT"
  [ -s "$CGROUP_ROOT/cgroup.procs" ] || return 0
  enabled=" $(cat "$CGROUP_ROOT/cgroup.subtree_control") "
  missing=0
  for controller in $V2_CONTROLLERS; do
    case "$enabled" in *" $controller "*) ;; *) missing=1 ;; esac
  done
  [ "$missing" = 1 ] || return 0
  mkdir -p "$CGROUP_ROOT/init" 2>/dev/null || { say "cannot create $CGROUP_ROOT/init: is the cgroup mount writable?"; return 0; }
  # Every process of the container, this shell included, moves to init/.
  while read -r pid; do echo "$pid" > "$CGROUP_ROOT/init/cgroup.procs" 2>/dev/null || true; done < "$CGROUP_ROOT/cgroup.procs"
}

part=${1:-serve}
case "$part" in
  serve|worker|doctor|run)
    if [ "$(mounts | awk -v point="$CGROUP_ROOT" '$1 == point { print $2 }')" = cgroup2 ]; then
      prepare_v2
    else
      prepare_v1
    fi
    ;;
esac

exec /usr/bin/tini -- node "$BRIG" "$@"
