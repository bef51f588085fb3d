/**
 * deploy/compose.yaml brought up with podman-compose under a project name of
 * our own, and torn down so that nothing of it is left: its containers, their
 * volumes (named and anonymous), its networks, and on the host their cgroups,
 * mounts and processes. What each container holds on the host is recorded
 * while it runs, so that its absence can be checked afterwards.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Podman } from './podman.ts';

/** The cgroup v1 controllers whose folders a container gets (podman's cgroupfs manager). */
const CGROUP_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids'];
const CGROUP_ROOT = '/sys/fs/cgroup';
const UP_TIMEOUT_MS = 5 * 60_000;
/** podman-compose stops one container after another; each gets its own stop timeout. */
const DOWN_TIMEOUT_MS = 10 * 60_000;
const DIAGNOSE_LOG_LINES = 3;
const DIAGNOSE_LINE_CHARS = 300;

export interface ContainerRecord {
  id: string;
  name: string;
  service: string;
  /** The container's cgroup below each controller's root, e.g. /libpod_parent/libpod-<id>. */
  cgroupPath: string;
  mergedDir: string;
  volumes: string[];
}

interface InspectedContainer {
  Id: string;
  Name: string;
  Config: { Labels: Record<string, string> };
  State: { CgroupPath?: string; ExitCode: number; Status: string; Running: boolean };
  RestartCount?: number;
  GraphDriver: { Data: { MergedDir?: string } };
  Mounts: { Type: string; Name?: string }[];
}

export interface Leftover {
  kind: 'container' | 'volume' | 'network' | 'cgroup' | 'mount' | 'process';
  what: string;
}

export class ComposeStack {
  /** Every container seen in this stack, by id (kept after removal, for the leftover check). */
  private readonly seen = new Map<string, ContainerRecord>();

  constructor(
    private readonly podman: Podman,
    private readonly composeFile: string,
    readonly project: string,
    private readonly env: Record<string, string>,
    private readonly networks: string[],
  ) {}

  private compose(args: string[], timeoutMs: number) {
    return this.podman.compose(['-p', this.project, '-f', this.composeFile, ...args], { env: this.env, timeoutMs });
  }

  /** Starts the services (images already built) and records their containers. */
  async up(services: string[]): Promise<void> {
    const result = await this.compose(['up', '-d', '--no-build', ...services], UP_TIMEOUT_MS);
    await this.record();
    // podman-compose 1.0.3 exits 0 even when a container failed to start: judge by the containers.
    const states = await this.inspectAll();
    const notRunning = states.filter((c) => !c.State.Running).map((c) => c.Name);
    if (result.code !== 0 || notRunning.length > 0) {
      throw new Error(
        `podman-compose up failed (exit ${result.code}; not running: ${notRunning.join(', ') || 'none'}): ${result.stderr.trim().split('\n').slice(-5).join(' | ')}`,
      );
    }
  }

  private async inspectAll(): Promise<InspectedContainer[]> {
    const ids = (
      await this.podman.mustPodman(['ps', '-aq', '--no-trunc', '--filter', `label=io.podman.compose.project=${this.project}`])
    ).stdout
      .split('\n')
      .filter(Boolean);
    if (ids.length === 0) return [];
    return JSON.parse((await this.podman.mustPodman(['inspect', ...ids])).stdout) as InspectedContainer[];
  }

  /** Records what each running container holds on the host. */
  async record(): Promise<ContainerRecord[]> {
    for (const c of await this.inspectAll()) {
      const previous = this.seen.get(c.Id);
      this.seen.set(c.Id, {
        id: c.Id,
        name: c.Name,
        service: c.Config.Labels['com.docker.compose.service'] ?? '',
        cgroupPath: c.State.CgroupPath || previous?.cgroupPath || '',
        mergedDir: c.GraphDriver.Data.MergedDir ?? previous?.mergedDir ?? '',
        volumes: c.Mounts.filter((m) => m.Type === 'volume' && m.Name).map((m) => m.Name!),
      });
    }
    return [...this.seen.values()];
  }

  /** Each container's state, restarts and last log lines: what a failed check shows. */
  async diagnose(lines = DIAGNOSE_LOG_LINES): Promise<string> {
    const report: string[] = [];
    for (const c of await this.inspectAll()) {
      const output = await this.podman.podman(['logs', '--tail', String(lines), c.Id]);
      const logs = `${output.stdout}${output.stderr}`
        .trim()
        .split('\n')
        .map((l) => l.slice(0, DIAGNOSE_LINE_CHARS));
      report.push(`${c.Name}: ${c.State.Status} (exit ${c.State.ExitCode}, restarts ${c.RestartCount ?? 0}) | ${logs.join(' | ')}`);
    }
    return report.join('\n');
  }

  /** The container of a service's replica (1-based), as podman-compose names it. */
  containerName(service: string, replica = 1): string {
    return `${this.project}_${service}_${replica}`;
  }

  async state(name: string): Promise<{ running: boolean; exitCode: number; status: string }> {
    const [c] = JSON.parse((await this.podman.mustPodman(['inspect', name])).stdout) as InspectedContainer[];
    return { running: c!.State.Running, exitCode: c!.State.ExitCode, status: c!.State.Status };
  }

  /** Runs the image's HEALTHCHECK once (podman schedules it with systemd timers, which this host has not). */
  async healthcheck(name: string): Promise<boolean> {
    return (await this.podman.podman(['healthcheck', 'run', name])).code === 0;
  }

  /** `podman stop` with a timeout; how long it took and how the container exited. */
  async stop(name: string, timeoutS: number): Promise<{ ms: number; exitCode: number }> {
    const result = await this.podman.mustPodman(['stop', '-t', String(timeoutS), name], { timeoutMs: (timeoutS + 30) * 1000 });
    return { ms: result.ms, exitCode: (await this.state(name)).exitCode };
  }

  async kill(name: string, signal: string): Promise<void> {
    await this.podman.mustPodman(['kill', '--signal', signal, name]);
  }

  /** redis-cli in the Redis container, with the password from its environment. */
  async redis(args: string[]): Promise<string> {
    const command = `REDISCLI_AUTH="$BRIG_REDIS_PASSWORD" redis-cli --raw ${args.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ')}`;
    return (await this.podman.mustPodman(['exec', this.containerName('redis'), 'sh', '-c', command])).stdout.trim();
  }

  /** Stops and removes everything of the stack: containers, volumes, networks. */
  async down(): Promise<void> {
    await this.record();
    await this.compose(['down', '-t', '45'], DOWN_TIMEOUT_MS);
    // podman-compose 1.0.3 leaves a container it did not start, the anonymous
    // volumes (the image's VOLUME) and the networks behind: removed here.
    const remaining = (await this.podman.podman(['ps', '-aq', '--filter', `label=io.podman.compose.project=${this.project}`])).stdout
      .split('\n')
      .filter(Boolean);
    if (remaining.length > 0) await this.podman.podman(['rm', '-f', '-v', ...remaining]);
    const volumes = [...new Set([...this.seen.values()].flatMap((c) => c.volumes))];
    for (const volume of volumes) await this.podman.podman(['volume', 'rm', '-f', volume]);
    for (const network of this.networks) await this.podman.podman(['network', 'rm', '-f', `${this.project}_${network}`]);
  }

  /** Whatever of the stack is still there, from podman's view and the host's. */
  async leftovers(): Promise<Leftover[]> {
    const found: Leftover[] = [];
    const containers = (await this.podman.podman(['ps', '-aq', '--filter', `label=io.podman.compose.project=${this.project}`])).stdout
      .split('\n')
      .filter(Boolean);
    found.push(...containers.map((id) => ({ kind: 'container' as const, what: id })));
    for (const c of this.seen.values()) {
      for (const volume of c.volumes)
        if ((await this.podman.podman(['volume', 'exists', volume])).code === 0) found.push({ kind: 'volume', what: volume });
    }
    for (const network of this.networks) {
      if ((await this.podman.podman(['network', 'exists', `${this.project}_${network}`])).code === 0)
        found.push({ kind: 'network', what: `${this.project}_${network}` });
    }
    found.push(...hostLeftovers([...this.seen.values()]));
    return found;
  }
}

/** Cgroup folders, mounts and processes on the host that belong to the given containers. */
export function hostLeftovers(containers: ContainerRecord[]): Leftover[] {
  const found: Leftover[] = [];
  for (const c of containers) {
    if (c.cgroupPath) {
      for (const controller of CGROUP_CONTROLLERS) {
        const dir = join(CGROUP_ROOT, controller, c.cgroupPath);
        if (existsSync(dir)) found.push({ kind: 'cgroup', what: dir });
      }
    }
  }
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  for (const c of containers) {
    for (const line of mountinfo) {
      if (line.includes(c.id) || (c.mergedDir && line.includes(c.mergedDir)))
        found.push({ kind: 'mount', what: line.split(' ')[4] ?? line });
    }
  }
  // A process in a container's cgroup, or one that names the container (conmon, podman's cleanup).
  const ids = containers.map((c) => c.id);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cgroup: string;
    let cmdline: string;
    try {
      cgroup = readFileSync(`/proc/${entry}/cgroup`, 'utf8');
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // gone while we looked
    }
    const owner = ids.find((id) => cgroup.includes(id) || cmdline.includes(id));
    if (owner) found.push({ kind: 'process', what: `${entry} ${cmdline.split('\0')[0]} (container ${owner.slice(0, 12)})` });
  }
  return found;
}
