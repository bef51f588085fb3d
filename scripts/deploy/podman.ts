/**
 * podman and podman-compose as test:deploy uses them, on this kind of host:
 * runc (crun refuses its hybrid cgroup layout), no default ulimits (podman's
 * exceed the machine's hard limits), and a private cgroup namespace for every
 * container (podman-compose 1.0.3 ignores compose's `cgroup: private`). These
 * settings live in a containers.conf of our own, handed over by
 * CONTAINERS_CONF, so the host's configuration is never touched.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CommandOptions, type CommandResult, mustRun, run } from './command.ts';

const CONTAINERS_CONF = `# written by npm run test:deploy
[containers]
default_ulimits = []
cgroupns = "private"

[engine]
runtime = "runc"
`;

export class Podman {
  private constructor(
    private readonly confDir: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  static create(): Podman {
    const confDir = mkdtempSync(join(tmpdir(), 'brig-test-deploy-'));
    const confPath = join(confDir, 'containers.conf');
    writeFileSync(confPath, CONTAINERS_CONF);
    return new Podman(confDir, { ...process.env, CONTAINERS_CONF: confPath });
  }

  /** The environment podman and podman-compose run with, plus extra variables. */
  environment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { ...this.env, ...extra };
  }

  podman(args: string[], opts: CommandOptions = {}): Promise<CommandResult> {
    return run('podman', args, { ...opts, env: { ...this.env, ...opts.env } });
  }

  mustPodman(args: string[], opts: CommandOptions = {}): Promise<CommandResult> {
    return mustRun('podman', args, { ...opts, env: { ...this.env, ...opts.env } });
  }

  compose(args: string[], opts: CommandOptions = {}): Promise<CommandResult> {
    return run('podman-compose', args, { ...opts, env: { ...this.env, ...opts.env } });
  }

  async imageExists(name: string): Promise<boolean> {
    return (await this.podman(['image', 'exists', name])).code === 0;
  }

  /** Removes our containers.conf. */
  close(): void {
    rmSync(this.confDir, { recursive: true, force: true });
  }
}
