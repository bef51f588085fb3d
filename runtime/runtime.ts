import {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { type CgroupManager, detectCgroups, type RunCgroup } from './cgroups/manager.ts';
import { cgroupVersionOf, type RuntimeConfig } from './config.ts';
import { HostError, LanguageUnavailableError, RequestError } from './errors.ts';
import { type ImageLayout, layoutImage, resolveInImage } from './images/layout.ts';
import { loadImageProfile } from './images/profile.ts';
import { type LanguageLimits, languageLimits } from './languages/limits.ts';
import { type LanguageProfile, loadLanguageProfiles } from './languages/profile.ts';
import { PreparedSandbox } from './sandbox/prepared.ts';
import { loadAndCompile } from './seccomp/compile.ts';
import { leaseSlots, type SlotLease, tryLeaseSlot } from './slots/lease.ts';
import { SlotPool } from './slots/pool.ts';
import { SlotSandbox } from './slots/warm.ts';
import { MNT_DETACH, unmount } from './system/libc.ts';
import { mbToBytes } from './units.ts';
import { MountPoints } from './workspace/mount-points.ts';
import type { Workspace } from './workspace/workspace.ts';

/** A leased slot with the cgroup it runs its steps in. */
export interface Slot {
  lease: SlotLease;
  cgroup: RunCgroup;
  /** Where this slot's job workspaces are mounted (its runs folder), reused from job to job. */
  mountPoints: MountPoints;
  /** Its next sandbox, prepared ahead when warm slots are on. */
  sandbox: SlotSandbox;
}

const STATE_DIR_MODE = 0o711; // sandboxes (unprivileged host uids) must traverse to their workspace
const PRIVATE_DIR_MODE = 0o700;
const PRIVATE_FILE_MODE = 0o600;
const SLOT_NAME = /^slot-\d+$/;

/**
 * Everything a worker process sets up once: profiles loaded and checked,
 * seccomp compiled, cgroups detected, slots leased and their leftovers swept.
 * A malformed profile or a missing kernel feature fails here, at start, not
 * in the middle of somebody's run.
 */
export class Runtime {
  private closed = false;
  /** Off the request's path: workspaces of closed submissions, and launchers of finished steps, on their way out. */
  private readonly releases = new Set<Promise<void>>();
  /**
   * Told what failed off any caller's path: a workspace that could not be
   * unmounted (its mount is left for the next start's sweep), or a finished
   * step's launcher that would not exit. The worker logs it; by default it
   * becomes a process warning.
   */
  onBackgroundFailure: (error: unknown) => void = (error) => process.emitWarning(error as Error);
  private readonly missingByLanguage = new Map<string, string[]>();
  private readonly limitsByLanguage = new Map<string, LanguageLimits>();

  private constructor(
    readonly config: RuntimeConfig,
    readonly image: ImageLayout,
    readonly languages: Map<string, LanguageProfile>,
    readonly cgroups: CgroupManager,
    readonly seccompFd: number,
    readonly scratchDir: string,
    private readonly slots: Slot[],
    readonly pool: SlotPool<Slot>,
  ) {}

  static async create(config: RuntimeConfig): Promise<Runtime> {
    if (process.getuid?.() !== 0)
      throw new HostError('not_root', 'the Brig runtime must run as root: it builds namespaces, cgroups and mounts');
    try {
      accessSync(config.launcherPath, constants.X_OK);
    } catch {
      throw new HostError('launcher_missing', `the launcher ${config.launcherPath} is missing: run "npm run build"`);
    }
    const stateDir = config.stateDir;
    // Folders sandboxes pass through are searchable but not listable by
    // others; what only Brig reads (filters, slot locks) is root's alone.
    const modes: [string, number][] = [
      [stateDir, STATE_DIR_MODE],
      [join(stateDir, 'runs'), STATE_DIR_MODE],
      [join(stateDir, 'scratch'), STATE_DIR_MODE],
      [join(stateDir, 'seccomp'), PRIVATE_DIR_MODE],
    ];
    for (const [dir, mode] of modes) {
      mkdirSync(dir, { recursive: true, mode });
      chmodSync(dir, mode); // mkdir keeps an existing dir's mode (e.g. a 0700 mkdtemp)
    }
    checkAncestorsSearchable(stateDir);
    const image = layoutImage(loadImageProfile(join(config.profilesDir, 'images', `${config.image}.json`)), join(stateDir, 'images'));
    const languages = loadLanguageProfiles(join(config.profilesDir, 'languages'));
    const seccompFd = openSeccompFilter(join(config.profilesDir, 'seccomp', `${config.seccompProfile}.json`), join(stateDir, 'seccomp'));

    const cgroups = detectCgroups({ parentName: config.cgroupParent, version: cgroupVersionOf(config) });
    cgroups.ensureParent();
    const leases = leaseSlots({
      locksDir: join(stateDir, 'slots'),
      count: config.slots,
      maxSlots: config.maxSlots,
      uidBase: config.uidBase,
    });
    const ours = new Set(leases.map((l) => l.name));
    // Leftovers of our slots (a crashed holder) and anything not named like a slot are ours to sweep.
    await cgroups.sweep((name) => SLOT_NAME.test(name) && !ours.has(name));
    const scratchDir = join(stateDir, 'scratch');
    const host = { launcherPath: config.launcherPath, seccompFd };
    const warm = { warm: config.warmSlots, maxAgeMs: config.preparedMaxAgeMs };
    const slots = leases.map((lease): Slot => {
      const runsDir = join(stateDir, 'runs', lease.name);
      mkdirSync(runsDir, { recursive: true, mode: STATE_DIR_MODE });
      sweepWorkspaces(runsDir);
      const cgroup = cgroups.open(lease.name);
      const spec = {
        image,
        scratchDir,
        rootHostId: lease.rootHostId,
        userHostId: lease.userHostId,
        tmpfsBytes: mbToBytes(config.defaults.diskMb),
      };
      return {
        lease,
        cgroup,
        mountPoints: new MountPoints(runsDir),
        sandbox: new SlotSandbox(() => PreparedSandbox.prepare(host, cgroup, spec), warm),
      };
    });
    for (const slot of slots) slot.sandbox.refill();
    const pool = new SlotPool(slots, (slot) => slot.sandbox.isReady);
    return new Runtime(config, image, languages, cgroups, seccompFd, scratchDir, slots, pool);
  }

  language(name: string): LanguageProfile {
    const language = this.languages.get(name);
    if (!language) {
      throw new RequestError(
        'language_unknown',
        `unknown language ${JSON.stringify(name)}: choose one of ${[...this.languages.keys()].join(', ')}`,
        { field: 'language' },
      );
    }
    const missing = this.missingTools(language);
    if (missing.length) {
      throw new LanguageUnavailableError(
        'language_unavailable',
        `language ${name} is not available in image ${this.image.name}: ${missing.join(', ')} not found`,
        { field: 'language' },
      );
    }
    return language;
  }

  /** A language's limits over the server defaults (see languages/limits.ts); worked out once per language. */
  limitsOf(language: LanguageProfile): LanguageLimits {
    let limits = this.limitsByLanguage.get(language.name);
    if (!limits) {
      limits = languageLimits(this.config, language);
      this.limitsByLanguage.set(language.name, limits);
    }
    return limits;
  }

  /**
   * The toolchain binaries of a language that the image lacks. Asked on every
   * Submission.open; the image does not change while the runtime lives, so each
   * language is looked up once.
   */
  missingTools(language: LanguageProfile): string[] {
    let missing = this.missingByLanguage.get(language.name);
    if (!missing) {
      const tools = [language.compile?.[0], language.run[0], language.versionCommand[0]].filter(
        (t): t is string => !!t && !t.startsWith('/box/'),
      );
      missing = [...new Set(tools)].filter((tool) => resolveInImage(this.image, tool) === null);
      this.missingByLanguage.set(language.name, missing);
    }
    return missing;
  }

  /**
   * Cleans the slots of Brig processes that died (kill -9, a crash): their
   * launchers died with them, but cgroups and workspace mounts stay until the
   * slot is leased again. Each free slot found in the cgroup tree or the runs
   * folder is leased for a moment, swept and released. Returns only the slots
   * that held leftovers (a cgroup, a workspace): an empty runs folder is not a
   * sign of a crash (a clean stop of an older version left one), so it is
   * removed without being reported.
   */
  async sweepFreeSlots(): Promise<string[]> {
    if (this.closed) return [];
    const { stateDir, uidBase } = this.config;
    const locksDir = join(stateDir, 'slots');
    const ours = new Set(this.slots.map((s) => s.lease.name));
    const seen = new Set([...this.cgroups.childNames(), ...readdirSync(join(stateDir, 'runs'))]);
    const swept: string[] = [];
    for (const name of [...seen].filter((n) => SLOT_NAME.test(n) && !ours.has(n)).sort()) {
      const lease = tryLeaseSlot(locksDir, Number(name.slice('slot-'.length)), uidBase);
      if (!lease) continue;
      try {
        const cgroupsLeft = await this.cgroups.sweep((n) => n !== name);
        const workspacesLeft = removeRunsDir(join(stateDir, 'runs', name));
        if (cgroupsLeft.length > 0 || workspacesLeft > 0) swept.push(name);
      } finally {
        lease.release();
      }
    }
    return swept;
  }

  /** Slots whose next sandbox is prepared and waiting for its step. */
  get preparedSandboxes(): number {
    return this.slots.filter((slot) => slot.sandbox.isReady).length;
  }

  /** Drops a closed submission's workspace without holding up the event loop; resolves once it is gone (or failed to go). */
  releaseInBackground(workspace: Workspace): Promise<void> {
    return this.inBackground(workspace.releaseOffThread());
  }

  /** Work left to finish off the request's path; a failure goes to onBackgroundFailure. Resolves once it has settled, never rejects. */
  inBackground(work: Promise<unknown>): Promise<void> {
    const settled: Promise<void> = work
      .then(() => {})
      .catch((error: unknown) => this.onBackgroundFailure(error))
      .finally(() => this.releases.delete(settled));
    this.releases.add(settled);
    return settled;
  }

  /** Resolves once every closed submission's workspace, and every finished step's launcher, is gone from the host. */
  async settled(): Promise<void> {
    while (this.releases.size) await Promise.all(this.releases);
  }

  /**
   * Idempotent: kills what still runs in our cgroups, removes them and our
   * runs folders, releases the slots. Nothing of a cleanly closed runtime is
   * left for another one's sweep to mistake for a crash's leftovers.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pool.close();
    await this.settled();
    for (const slot of this.slots) {
      await slot.sandbox.close();
      await slot.cgroup.destroy();
      removeRunsDir(slot.mountPoints.runsDir);
      slot.lease.release();
    }
    this.cgroups.removeParentIfUnused();
    closeSync(this.seccompFd);
  }
}

/**
 * Sandboxes set up their mounts as unprivileged host uids, so every folder
 * above the state dir must let others pass through (o+x).
 */
function checkAncestorsSearchable(stateDir: string): void {
  for (let dir = dirname(stateDir); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & SEARCH_BY_OTHERS) === 0) {
      throw new HostError(
        'state_dir_unreachable',
        `${dir}, above the state dir ${stateDir}, is not searchable by other users: sandboxes run as unprivileged host uids and must reach their workspace; chmod o+x ${dir} or choose another BRIG_STATE_DIR`,
      );
    }
    if (dir === '/') return;
  }
}

const SEARCH_BY_OTHERS = 0o001;

/**
 * Compiles the profile (once per content hash) and keeps the BPF in a file
 * whose fd every launcher inherits as fd 3 and reads with pread.
 */
function openSeccompFilter(profilePath: string, dir: string): number {
  if (!existsSync(profilePath))
    throw new HostError('seccomp_profile_missing', `seccomp profile ${profilePath} does not exist: check BRIG_SECCOMP_PROFILE`);
  const compiled = loadAndCompile(profilePath);
  const path = join(dir, `${compiled.sha256}.bpf`);
  if (!existsSync(path)) {
    const staging = `${path}.tmp-${process.pid}`;
    writeFileSync(staging, compiled.bpf, { mode: PRIVATE_FILE_MODE });
    renameSync(staging, path);
  }
  return openSync(path, 'r');
}

/**
 * Unmounts and removes workspaces left by a crashed holder of the slot, and
 * its mount points. Each workspace is its own tmpfs, so a lazy unmount drops
 * the hostile content without reading it. Returns how many workspaces were
 * still mounted (an empty mount point, kept for reuse, is no leftover).
 */
function sweepWorkspaces(runsDir: string): number {
  let mounted = 0;
  for (const name of readdirSync(runsDir)) {
    const dir = join(runsDir, name);
    try {
      unmount(dir, MNT_DETACH);
      mounted++;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
    }
    rmdirSync(dir);
  }
  return mounted;
}

/** Sweeps a slot's runs folder and removes it; a folder already gone holds nothing. Returns how many workspaces were left in it. */
function removeRunsDir(runsDir: string): number {
  if (!existsSync(runsDir)) return 0;
  const workspaces = sweepWorkspaces(runsDir);
  rmdirSync(runsDir);
  return workspaces;
}
