/**
 * Machines simulated with network namespaces: each host is a namespace of its
 * own with one interface (eth0) and one address, joined by a veth pair to a
 * bridge that lives in a "switch" namespace of its own. Nothing is added to
 * the host's own network: no interface, route or address outside the
 * namespaces made here, which are deleted on close().
 *
 * Processes enter a host's namespace with `nsenter --net`, not `ip netns
 * exec`: the latter also gives the process a mount namespace with a fresh
 * /sys for the network namespace, which hides the cgroup hierarchies mounted
 * under /sys/fs/cgroup, and a worker there could build no sandbox. Only the
 * network is separated this way; the hosts share the kernel, its cgroup
 * hierarchies and the file system, so the tests give each host its own state
 * dir and cgroup parent, as separate machines would have.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const NETNS_DIR = '/run/netns';
const SWITCH_BRIDGE = 'br0';
/** The interface of a host: one per machine, as a cloud VM has. */
const HOST_INTERFACE = 'eth0';
/** Linux interface names hold at most 15 bytes (IFNAMSIZ less the NUL). */
const MAX_INTERFACE_NAME = 15;
/** How long a process gets to exit after SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 15_000;
/** Output kept per process, for the message of a failed test. */
const LOG_TAIL_BYTES = 16 * 1024;

export interface HostSpec {
  /** Short, unique: it names the host's namespace and its port on the switch. */
  name: string;
  /** The host's address on the switched subnet. */
  address: string;
}

export interface HostProcess {
  name: string;
  child: ChildProcess;
  /** Resolves once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last LOG_TAIL_BYTES of its stdout and stderr. */
  log(): string;
  /** SIGTERM (or `signal`), then SIGKILL once timeoutMs have passed. Idempotent. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SwitchedNetwork {
  /** Namespace name of a host. */
  namespace(host: string): string;
  /** Starts `command args` in a host's network namespace; the child is the command itself (nsenter execs it). */
  spawn(host: string, command: string, args: string[], env: NodeJS.ProcessEnv): HostProcess;
  /** Pulls the host's cable: its port on the switch goes down. */
  cut(host: string): void;
  /** Plugs it back in. */
  restore(host: string): void;
  /** Pids of processes in a host's network namespace. */
  pids(host: string): number[];
  /** Namespaces that still exist. */
  namespaces(): string[];
  /** Stops every process started here (SIGTERM, then SIGKILL), kills what is left in the namespaces, deletes them. Idempotent. */
  close(): Promise<void>;
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function namespaceExists(name: string): boolean {
  return existsSync(`${NETNS_DIR}/${name}`);
}

function pidsIn(namespace: string): number[] {
  if (!namespaceExists(namespace)) return [];
  return ip('netns', 'pids', namespace)
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

/**
 * Namespaces of an earlier run of a test that was killed before it could
 * delete them (its pid is gone) and that hold no process any more.
 */
function removeStaleNamespaces(prefix: string): void {
  if (!existsSync(NETNS_DIR)) return;
  const pattern = new RegExp(`^${prefix}-(\\d+)-`);
  for (const name of readdirSync(NETNS_DIR)) {
    const pid = pattern.exec(name)?.[1];
    if (!pid || existsSync(`/proc/${pid}`) || pidsIn(name).length > 0) continue;
    try {
      ip('netns', 'delete', name);
    } catch {
      // another run's sweep got there first
    }
  }
}

/**
 * Builds the switch and one namespace per host: `<prefix>-<pid>-<host>`,
 * each host's eth0 at its address (a /24 by default), its peer `v-<host>`
 * a port of the bridge in `<prefix>-<pid>-switch`.
 */
export function createSwitchedNetwork(prefix: string, hosts: HostSpec[], prefixLength = 24): SwitchedNetwork {
  removeStaleNamespaces(prefix);
  const namespace = (host: string) => `${prefix}-${process.pid}-${host}`;
  const port = (host: string) => `v-${host}`;
  const switchNs = namespace('switch');
  const created: string[] = [];
  const processes: HostProcess[] = [];
  const known = new Set(hosts.map((h) => h.name));
  const check = (host: string) => {
    if (!known.has(host)) throw new Error(`no host ${host} on this network (${[...known].join(', ')})`);
  };

  const network: SwitchedNetwork = {
    namespace(host) {
      check(host);
      return namespace(host);
    },
    spawn(host, command, args, env) {
      check(host);
      const child = spawn('nsenter', [`--net=${NETNS_DIR}/${namespace(host)}`, command, ...args], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let tail = '';
      const keep = (data: Buffer) => {
        tail = (tail + data.toString('utf8')).slice(-LOG_TAIL_BYTES);
      };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.once('exit', (code, signal) => resolve({ code, signal }));
        child.once('error', (error) => {
          keep(Buffer.from(`spawn failed: ${error.message}\n`));
          resolve({ code: null, signal: null });
        });
      });
      let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
      const hostProcess: HostProcess = {
        name: `${host}: ${command} ${args.join(' ')}`,
        child,
        exited,
        log: () => tail,
        stop(signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS) {
          stopping ??= (async () => {
            if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return exited;
            child.kill(signal);
            const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
            try {
              return await exited;
            } finally {
              clearTimeout(timer);
            }
          })();
          return stopping;
        },
      };
      processes.push(hostProcess);
      return hostProcess;
    },
    cut(host) {
      check(host);
      ip('-n', switchNs, 'link', 'set', port(host), 'down');
    },
    restore(host) {
      check(host);
      ip('-n', switchNs, 'link', 'set', port(host), 'up');
    },
    pids(host) {
      check(host);
      return pidsIn(namespace(host));
    },
    namespaces() {
      return created.filter(namespaceExists);
    },
    async close() {
      // Each step runs whatever became of the one before: nothing may outlive the test.
      await Promise.all(processes.map((p) => p.stop().catch(() => {})));
      for (const name of created) {
        for (const pid of pidsIn(name)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
      }
      for (const name of [...created].reverse()) {
        for (let attempt = 0; namespaceExists(name) && attempt < 20; attempt++) {
          try {
            ip('netns', 'delete', name);
          } catch {
            await sleep(100);
          }
        }
      }
    },
  };

  try {
    ip('netns', 'add', switchNs);
    created.push(switchNs);
    ip('-n', switchNs, 'link', 'add', SWITCH_BRIDGE, 'type', 'bridge');
    ip('-n', switchNs, 'link', 'set', SWITCH_BRIDGE, 'up');
    for (const host of hosts) {
      if (port(host.name).length > MAX_INTERFACE_NAME) throw new Error(`host name ${host.name} is too long for an interface name`);
      const ns = namespace(host.name);
      ip('netns', 'add', ns);
      created.push(ns);
      ip('-n', switchNs, 'link', 'add', port(host.name), 'type', 'veth', 'peer', 'name', HOST_INTERFACE, 'netns', ns);
      ip('-n', switchNs, 'link', 'set', port(host.name), 'master', SWITCH_BRIDGE);
      ip('-n', switchNs, 'link', 'set', port(host.name), 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'addr', 'add', `${host.address}/${prefixLength}`, 'dev', HOST_INTERFACE);
      ip('-n', ns, 'link', 'set', HOST_INTERFACE, 'up');
    }
  } catch (error) {
    for (const ns of created.reverse()) {
      try {
        ip('netns', 'delete', ns);
      } catch {
        // best effort: the error below is what matters
      }
    }
    throw error;
  }
  return network;
}
