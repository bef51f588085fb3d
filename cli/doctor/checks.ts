import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { detectCgroups } from '../../runtime/cgroups/manager.ts';
import { cgroupVersionOf, type RuntimeConfig } from '../../runtime/config.ts';
import { probeVersion } from '../../runtime/languages/version.ts';
import { Runtime } from '../../runtime/runtime.ts';
import { loadAndCompile } from '../../runtime/seccomp/compile.ts';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do when the check fails. */
  fix?: string;
}

function attempt(name: string, fix: string, body: () => string): Check {
  try {
    return { name, ok: true, detail: body() };
  } catch (error) {
    return { name, ok: false, detail: (error as Error).message, fix };
  }
}

function readNumber(path: string): number | null {
  try {
    return Number(readFileSync(path, 'utf8').trim());
  } catch {
    return null;
  }
}

/** Host checks that need no sandbox. */
export function hostChecks(config: RuntimeConfig): Check[] {
  const checks: Check[] = [];
  checks.push(
    attempt('root', 'run brig as root (it creates namespaces, cgroups and mounts)', () => {
      if (process.getuid?.() !== 0) throw new Error(`running as uid ${process.getuid?.()}`);
      return 'running as root';
    }),
  );
  checks.push(
    attempt('user namespaces', 'sysctl -w user.max_user_namespaces=15000 (and kernel.unprivileged_userns_clone=1 where it exists)', () => {
      const max = readNumber('/proc/sys/user/max_user_namespaces');
      if (max === null) throw new Error('the kernel has no user namespaces (/proc/sys/user/max_user_namespaces missing)');
      if (max < 1) throw new Error(`user.max_user_namespaces is ${max}`);
      const clone = readNumber('/proc/sys/kernel/unprivileged_userns_clone');
      if (clone === 0) throw new Error('kernel.unprivileged_userns_clone is 0');
      return `user.max_user_namespaces=${max}`;
    }),
  );
  checks.push(
    attempt('overlayfs', 'load the overlay module: modprobe overlay', () => {
      if (!/\toverlay\n/.test(readFileSync('/proc/filesystems', 'utf8'))) throw new Error('overlay is not in /proc/filesystems');
      return 'overlay filesystem available';
    }),
  );
  checks.push(
    attempt('seccomp', 'use a kernel built with CONFIG_SECCOMP_FILTER and install libseccomp2 (apt-get install libseccomp2)', () => {
      if (!/^Seccomp:/m.test(readFileSync('/proc/self/status', 'utf8'))) throw new Error('the kernel does not report seccomp support');
      const compiled = loadAndCompile(join(config.profilesDir, 'seccomp', `${config.seccompProfile}.json`));
      return `profile ${config.seccompProfile} compiles to ${compiled.bpf.length / 8} BPF instructions`;
    }),
  );
  checks.push(
    attempt('launcher', 'build it: npm run build (needs a C compiler: apt-get install gcc libc6-dev)', () => {
      accessSync(config.launcherPath, constants.X_OK);
      return config.launcherPath;
    }),
  );
  try {
    // On v2 the answer depends on the cgroup this process runs in: run doctor as the service runs (in its unit or container).
    const cgroups = detectCgroups({ parentName: config.cgroupParent, version: cgroupVersionOf(config) });
    for (const c of cgroups.describe()) checks.push({ name: `cgroups: ${c.name}`, ok: c.ok, detail: c.detail, fix: c.fix });
  } catch (error) {
    checks.push({
      name: 'cgroups',
      ok: false,
      detail: (error as Error).message,
      fix: 'mount cgroup v2 with memory, cpu and pids enabled (in a systemd service or a container: delegated to its cgroup), or cgroup v1 memory, cpu, cpuacct and pids controllers',
    });
  }
  return checks;
}

/** Builds a runtime and runs each language's version command in a real sandbox. */
export async function sandboxChecks(config: RuntimeConfig): Promise<Check[]> {
  const checks: Check[] = [];
  let runtime: Runtime;
  try {
    runtime = await Runtime.create({ ...config, slots: 1 });
  } catch (error) {
    return [{ name: 'runtime', ok: false, detail: (error as Error).message, fix: 'fix the failed checks above first' }];
  }
  try {
    checks.push({ name: 'runtime', ok: true, detail: `image ${runtime.image.name}, cgroup v${runtime.cgroups.version}` });
    for (const language of runtime.languages.values()) {
      const missing = runtime.missingTools(language);
      if (missing.length) {
        checks.push({
          name: `language ${language.name}`,
          ok: false,
          detail: `unavailable: ${missing.join(', ')} not in image ${runtime.image.name}`,
          fix: `install the toolchain in the image (on the host image: apt-get install the package that provides ${missing[0]})`,
        });
        continue;
      }
      try {
        checks.push({ name: `language ${language.name}`, ok: true, detail: await probeVersion(runtime, language.name) });
      } catch (error) {
        checks.push({
          name: `language ${language.name}`,
          ok: false,
          detail: (error as Error).message,
          fix: 'run brig doctor again; if it persists, the sandbox itself is failing: check the runtime line above',
        });
      }
    }
  } finally {
    await runtime.close();
  }
  return checks;
}
