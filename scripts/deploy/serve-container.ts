/**
 * The image's default command, `brig serve` (API, worker and a private
 * Redis in one container), with the worker's privileges: it answers a run,
 * and SIGINT (what a terminal's Ctrl-C sends; tini hands it to brig) makes it
 * drain and exit 0 with nothing left on the host.
 */
import { freePort } from '../../services/shared/redis-server.ts';
import { type Checklist, expect } from './checks.ts';
import { BRIG_IMAGE } from './images.ts';
import type { Podman } from './podman.ts';
import type { WorkerPrivileges } from './privileges.ts';
import { BrigClient, until } from './service-client.ts';
import { type ContainerRecord, hostLeftovers } from './stack.ts';

const NAME = 'brigdeploytest-serve';
const READY_TIMEOUT_MS = 120_000;
const EXIT_TIMEOUT_MS = 20_000;
const LEFTOVER_SETTLE_MS = 15_000;

export async function checkServeContainer(podman: Podman, checks: Checklist, granted: WorkerPrivileges): Promise<void> {
  const port = await freePort();
  const privileges = [
    '--cap-drop',
    'ALL',
    ...granted.capAdd.flatMap((c) => ['--cap-add', c]),
    ...granted.securityOpt.flatMap((o) => ['--security-opt', o]),
  ];
  let record: ContainerRecord | null = null;
  try {
    await checks.check('brig serve in a container answers a run', async () => {
      await podman.podman(['rm', '-f', '-v', NAME]);
      await podman.mustPodman([
        'run',
        '-d',
        '--name',
        NAME,
        '--read-only',
        '--tmpfs',
        '/tmp',
        ...privileges,
        '-p',
        `127.0.0.1:${port}:8080`,
        '-e',
        'BRIG_ALLOW_ANONYMOUS=1',
        '-e',
        'LOG_LEVEL=warn',
        BRIG_IMAGE,
      ]);
      const [c] = JSON.parse((await podman.mustPodman(['inspect', NAME])).stdout) as {
        Id: string;
        State: { CgroupPath: string };
        GraphDriver: { Data: { MergedDir: string } };
        Mounts: { Type: string; Name?: string }[];
      }[];
      record = {
        id: c!.Id,
        name: NAME,
        service: 'serve',
        cgroupPath: c!.State.CgroupPath,
        mergedDir: c!.GraphDriver.Data.MergedDir,
        volumes: c!.Mounts.filter((m) => m.Type === 'volume').map((m) => m.Name!),
      };
      const brig = new BrigClient(`http://127.0.0.1:${port}`, '');
      await until('brig serve to be ready', READY_TIMEOUT_MS, async () => ((await brig.readiness())?.status === 'ready' ? true : null));
      const r = await brig.submit({ language: 'cpp', source: '#include <iostream>\nint main() { std::cout << "serve\\n"; }\n' }, true);
      expect(r.verdict === 'ok' && r.run?.stdout === 'serve\n', `got ${r.verdict}`);
      return 'C++ hello: verdict ok';
    });

    await checks.check('SIGINT to the container (Ctrl-C) drains brig serve: exit 0', async () => {
      const startMs = Date.now();
      await podman.mustPodman(['kill', '--signal', 'INT', NAME]);
      const state = await until(
        'the container to exit',
        EXIT_TIMEOUT_MS,
        async () => {
          const [c] = JSON.parse((await podman.mustPodman(['inspect', NAME])).stdout) as {
            State: { Running: boolean; ExitCode: number };
          }[];
          return c!.State.Running ? null : c!.State;
        },
        100,
      );
      expect(state.ExitCode === 0, `exit code ${state.ExitCode}`);
      return `exited 0 in ${((Date.now() - startMs) / 1000).toFixed(1)} s`;
    });
  } finally {
    await checks.check('the serve container leaves nothing once removed', async () => {
      await podman.podman(['rm', '-f', '-v', NAME]);
      if (!record) return 'it never started';
      const rec: ContainerRecord = record;
      for (const volume of rec.volumes) await podman.podman(['volume', 'rm', '-f', volume]);
      const left = await until('the leftovers to go', LEFTOVER_SETTLE_MS, async () =>
        hostLeftovers([rec]).length === 0 ? [] : null,
      ).catch(() => hostLeftovers([rec]));
      expect(left.length === 0, left.map((l) => `${l.kind} ${l.what}`).join('; '));
      return 'no cgroup, mount or process';
    });
  }
}
