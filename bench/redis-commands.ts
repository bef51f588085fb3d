/**
 * Counting the Redis commands a stretch of work costs, two ways at once:
 *
 *  - top level: the commands clients sent, as MONITOR shows them. MONITOR
 *    prints every command a client sends with the client's address, and
 *    every command a Lua script runs with the source `lua`; those are left
 *    out, so an EVALSHA (or EVAL) counts once, however much its script does.
 *    Commands of the counter's own connections (TCP, where the service
 *    talks over the Unix socket) are left out too. Scripts are named by
 *    their SHA: BullMQ's from its script table, Brig's from LuaScript.
 *  - in all: the delta of INFO commandstats, which counts the commands
 *    scripts run as well (and the EVALSHA around them).
 *
 * MONITOR costs Redis a formatted line per command; at a few thousand
 * commands a second that is well under a percent of a core.
 */
import { createHash } from 'node:crypto';
import * as bullmqScripts from 'bullmq/dist/esm/scripts/index.js';
import { Redis } from 'ioredis';
// Imported for their LuaScripts, which register their names by SHA.
import '../services/api/middleware/rate-limit.ts';
import '../services/shared/admission.ts';
import '../services/shared/run-store.ts';
import '../services/shared/worker-registry.ts';
import { luaScriptName } from '../services/shared/redis.ts';

const bullmqNames = new Map<string, string>(
  Object.values(bullmqScripts as unknown as Record<string, { name?: unknown; content?: unknown }>)
    .filter((script): script is { name: string; content: string } => typeof script.content === 'string')
    .map((script) => [createHash('sha1').update(script.content).digest('hex'), `bullmq:${script.name}`]),
);

function scriptName(sha: string): string {
  return luaScriptName(sha) ?? bullmqNames.get(sha) ?? sha.slice(0, 12);
}

/** A command as counted: its name, and for a script the script's. */
function label(args: string[]): string {
  const name = (args[0] ?? '').toLowerCase();
  if (name === 'evalsha') return `evalsha ${scriptName(args[1] ?? '')}`;
  // A script's first run after NOSCRIPT; MONITOR escapes its source, so it is not named.
  if (name === 'eval') return 'eval (a script being loaded)';
  return name;
}

export interface CommandCounts {
  /** What clients sent (MONITOR), by command (scripts by name). */
  topLevel: Map<string, number>;
  /** What scripts ran inside (MONITOR, source lua), by command. */
  inScripts: Map<string, number>;
  /** INFO commandstats delta: every command, those scripts ran included. */
  inAll: Map<string, number>;
}

export const sum = (counts: Map<string, number>) => [...counts.values()].reduce((a, b) => a + b, 0);

function add(counts: Map<string, number>, key: string, n = 1): void {
  counts.set(key, (counts.get(key) ?? 0) + n);
}

async function commandStats(redis: Redis): Promise<Map<string, number>> {
  const stats = new Map<string, number>();
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (match) stats.set(match[1]!, Number(match[2]));
  }
  return stats;
}

/**
 * Starts counting on the Redis at `url` (a TCP URL of the server the service
 * reaches by its Unix socket); stop() returns what was counted between.
 */
export async function countCommands(url: string): Promise<{ stop(): Promise<CommandCounts> }> {
  const topLevel = new Map<string, number>();
  const inScripts = new Map<string, number>();
  const client = new Redis(url);
  // A connection of its own, in monitor mode.
  const monitor = await client.monitor();
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === 'lua') add(inScripts, (args[0] ?? '').toLowerCase());
    else if (source.startsWith('unix')) add(topLevel, label(args));
  });
  // MONITOR is on once it has answered; the stats are read after that, over the other connection.
  const before = await commandStats(client);
  return {
    async stop() {
      const after = await commandStats(client);
      monitor.disconnect();
      await client.quit();
      const inAll = new Map<string, number>();
      for (const [name, calls] of after) {
        // The first INFO is counted in the second reading; the second is not yet.
        const delta = calls - (before.get(name) ?? 0) - (name === 'info' ? 1 : 0);
        if (delta > 0) inAll.set(name, delta);
      }
      return { topLevel, inScripts, inAll };
    },
  };
}

/** The largest counts, per run, as `name 1.23` joined by commas. */
export function perRun(counts: Map<string, number>, runs: number, top: number): string {
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, n]) => `${name} ${(n / runs).toFixed(2)}`)
    .join(', ');
}
