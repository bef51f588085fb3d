import { LIMIT_NAMES, type Limits } from '../../../runtime/limits.ts';
import { HEARTBEAT_TTL_MS, type WorkerHeartbeat } from '../../shared/contract.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Redis } from '../../shared/redis.ts';
import type { LanguageView } from '../../shared/schemas.ts';
import { readHeartbeats } from '../../shared/worker-registry.ts';

/**
 * The workers whose heartbeat is fresh, and the languages they can run, read
 * from their heartbeats (worker-registry.ts): the API's only source about languages and limits. A submission asks on every request, so the answer is
 * kept for a moment; a caller that did not find what it looked for may ask
 * for a fresh read (a worker that just came up), at most every
 * MIN_REFRESH_INTERVAL_MS.
 */
const CACHE_MS = 1_000;
const MIN_REFRESH_INTERVAL_MS = 200;

export class LiveWorkers {
  private cached: { atMs: number; heartbeats: Promise<WorkerHeartbeat[]> } | null = null;
  /** The languages of the cached heartbeats, worked out once per read rather than once per request. */
  private union: { of: Promise<WorkerHeartbeat[]>; languages: Promise<ReadonlyMap<string, LanguageView>> } | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly logger: Logger,
  ) {}

  /** Fresh heartbeats, sorted by worker id. */
  heartbeats(opts: { refresh?: boolean } = {}): Promise<WorkerHeartbeat[]> {
    const now = Date.now();
    const age = this.cached ? now - this.cached.atMs : Infinity;
    if (age > CACHE_MS || (opts.refresh && age > MIN_REFRESH_INTERVAL_MS)) {
      const heartbeats = this.read(now);
      this.cached = { atMs: now, heartbeats };
      // A failed read must not stick: the next caller tries again.
      heartbeats.catch(() => {
        if (this.cached?.heartbeats === heartbeats) this.cached = null;
      });
    }
    return this.cached!.heartbeats;
  }

  /**
   * The union of the live workers' languages, by name. Workers may differ
   * during a rollout: the versions are listed, the first worker's defaults
   * are shown, and a request is held to the lowest maximum of any of them
   * (it must fit whichever worker takes it). Shared by every caller until
   * the next read: not to be changed.
   */
  languages(opts: { refresh?: boolean } = {}): Promise<ReadonlyMap<string, LanguageView>> {
    const heartbeats = this.heartbeats(opts);
    if (this.union?.of !== heartbeats) this.union = { of: heartbeats, languages: heartbeats.then(unionOfLanguages) };
    return this.union.languages;
  }

  private async read(now: number): Promise<WorkerHeartbeat[]> {
    const heartbeats: WorkerHeartbeat[] = [];
    for (const raw of await readHeartbeats(this.redis)) {
      try {
        const heartbeat = JSON.parse(raw) as WorkerHeartbeat;
        // The key's own TTL drops a dead worker; the timestamp also catches a stuck one.
        if (now - heartbeat.at <= HEARTBEAT_TTL_MS && Array.isArray(heartbeat.languages)) heartbeats.push(heartbeat);
      } catch {
        this.logger.warn({ heartbeat: raw.slice(0, 200) }, 'unreadable worker heartbeat ignored');
      }
    }
    return heartbeats.sort((a, b) => a.workerId.localeCompare(b.workerId));
  }
}

function lowestOf(a: Limits, b: Limits | undefined): Limits {
  if (!b) return a;
  return Object.fromEntries(LIMIT_NAMES.map((name) => [name, Math.min(a[name], b[name])])) as unknown as Limits;
}

/** The live workers' languages by name (see LiveWorkers.languages). */
function unionOfLanguages(heartbeats: WorkerHeartbeat[]): ReadonlyMap<string, LanguageView> {
  const languages = new Map<string, LanguageView>();
  for (const heartbeat of heartbeats) {
    for (const language of heartbeat.languages) {
      const known = languages.get(language.name);
      if (known) {
        known.workers += 1;
        if (!known.versions.includes(language.version)) known.versions.push(language.version);
        known.maxLimits = lowestOf(known.maxLimits, language.maxLimits);
        continue;
      }
      languages.set(language.name, {
        name: language.name,
        displayName: language.displayName,
        versions: [language.version],
        // A worker older than the field sends none: then only files can be sent.
        sourceFile: language.sourceFile ?? null,
        limits: language.limits,
        compileLimits: language.compileLimits,
        maxLimits: language.maxLimits ?? language.limits,
        workers: 1,
      });
    }
  }
  return new Map([...languages].sort(([a], [b]) => a.localeCompare(b)));
}
