/**
 * What of the kernel a sandbox's /proc shows. The launcher mounts a fresh
 * /proc (only the sandbox's own processes), then makes these paths read-only
 * and masks these (a file gets /dev/null, a directory an empty read-only
 * tmpfs); a path this kernel does not have is skipped.
 *
 * Kept, because programs read them: /proc/self and /proc/thread-self (the
 * JVM reads mountinfo and cgroup), /proc/cpuinfo (the JVM, libraries
 * choosing code paths), /proc/meminfo (Node sizes its heap from it, the JVM
 * reads it), /proc/mounts and /proc/net (links into /proc/self; per
 * namespace), /proc/version (what uname says anyway), /proc/filesystems,
 * /proc/sysvipc (the sandbox's own IPC namespace) and, read-only, /proc/sys
 * apart from the parts masked below.
 */

/** The default `maskedPaths` of OCI runtimes (runc, Docker's oci/defaults.go, newer Docker's /proc/interrupts). */
const OCI_MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/proc/interrupts',
  // A sandbox has no /sys; listed for parity should an image ever bring one.
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

/** The default `readonlyPaths` of OCI runtimes. Masks below them (some of /proc/sys) go on top. */
export const OCI_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/**
 * Host-wide state that OCI runtimes leave visible. Counters that move with
 * whatever else runs on the machine tell a program about other runs (how
 * many, how busy) and make side channels; the rest describes the host.
 */
const HOST_WIDE_PATHS = [
  // counters of the whole machine
  '/proc/stat',
  '/proc/loadavg',
  '/proc/uptime',
  '/proc/vmstat',
  '/proc/softirqs',
  '/proc/schedstat',
  '/proc/pressure',
  '/proc/diskstats',
  '/proc/zoneinfo',
  '/proc/buddyinfo',
  '/proc/pagetypeinfo',
  '/proc/slabinfo',
  '/proc/vmallocinfo',
  '/proc/allocinfo',
  '/proc/locks',
  '/proc/key-users',
  '/proc/cgroups',
  '/proc/irq',
  '/proc/sys/fs',
  // the host's configuration and hardware
  '/proc/cmdline',
  '/proc/bootconfig',
  '/proc/config.gz',
  '/proc/modules',
  '/proc/kallsyms',
  '/proc/swaps',
  '/proc/partitions',
  '/proc/mdstat',
  '/proc/devices',
  '/proc/misc',
  '/proc/dma',
  '/proc/iomem',
  '/proc/ioports',
  '/proc/mtrr',
  '/proc/consoles',
  '/proc/crypto',
  '/proc/execdomains',
  '/proc/bus',
  '/proc/fs',
  '/proc/driver',
  '/proc/tty',
  '/proc/sys/kernel',
  '/proc/sys/dev',
  '/proc/sys/debug',
  // kernel memory and log, root-only on the host already
  '/proc/kmsg',
  '/proc/kpagecount',
  '/proc/kpageflags',
  '/proc/kpagecgroup',
  '/proc/vmcore',
];

/** Everything the launcher masks in /proc (and /sys), in mount order. */
export const KERNEL_MASKED_PATHS = [...new Set([...OCI_MASKED_PATHS, ...HOST_WIDE_PATHS])];
