/**
 * Finds cgroup mounts in /proc/self/mountinfo (proc(5)): where each v1
 * controller is mounted differs between hosts (cpu and cpuacct are often
 * co-mounted as "cpu,cpuacct"), so paths are never assumed.
 */
export interface CgroupMount {
  mountPoint: string;
  /**
   * The cgroup this mount shows at its mount point, as a path in the
   * hierarchy seen from the reader's cgroup namespace: "/" for a whole
   * hierarchy or a namespace's own view, "/docker/abc" for a bind-mounted
   * subtree. /proc/self/cgroup paths are relative to the same namespace root.
   */
  root: string;
  fsType: 'cgroup' | 'cgroup2';
  /** v1 only: the super options, which name the controllers bound to this hierarchy. */
  superOptions: string[];
}

const OPTIONAL_FIELDS_END = '-';
const ROOT_FIELD = 3;
const MOUNT_POINT_FIELD = 4;
const FIRST_OPTIONAL_FIELD = 6;
const OCTAL_ESCAPE = /\\([0-7]{3})/g;
const OCTAL_RADIX = 8;

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeField(field: string): string {
  return field.replace(OCTAL_ESCAPE, (_, octal: string) => String.fromCharCode(parseInt(octal, OCTAL_RADIX)));
}

export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const fields = line.trim().split(' ');
    const separator = fields.indexOf(OPTIONAL_FIELDS_END, FIRST_OPTIONAL_FIELD);
    if (separator < 0 || fields.length < separator + 4) continue;
    const fsType = fields[separator + 1];
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    mounts.push({
      mountPoint: unescapeField(fields[MOUNT_POINT_FIELD]),
      root: unescapeField(fields[ROOT_FIELD]),
      fsType,
      superOptions: fields[separator + 3].split(','),
    });
  }
  return mounts;
}

/** Mount point of each wanted v1 controller; the first mount wins when a hierarchy is bind-mounted twice. */
export function findV1Controllers(mounts: CgroupMount[], controllers: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const mount of mounts) {
    if (mount.fsType !== 'cgroup') continue;
    for (const controller of controllers) {
      if (!found.has(controller) && mount.superOptions.includes(controller)) found.set(controller, mount.mountPoint);
    }
  }
  return found;
}

export function cgroup2Mounts(mounts: CgroupMount[]): CgroupMount[] {
  return mounts.filter((mount) => mount.fsType === 'cgroup2');
}
