import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import type { RuntimeConfig } from '../../runtime/config.ts';
import { ConfigError } from '../../runtime/errors.ts';
import type { Limits } from '../../runtime/limits.ts';

/**
 * The only module that reads process.env. Everything is parsed and checked
 * once at start, then passed down. Every variable, its default and its
 * meaning is listed in the README.
 */
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);
/** '1', 'true', 'yes' and 'on' are true; '0', 'false', 'no' and 'off' are false; unset is the fallback. */
const flag = (fallback: '0' | '1') =>
  z
    .enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'])
    .default(fallback)
    .transform((v) => v === '1' || v === 'true' || v === 'yes' || v === 'on');

const defaultLimits: Limits = {
  cpuMs: 2000,
  wallMs: 5000,
  memoryMb: 256,
  processes: 16,
  outputBytes: 1 << 20,
  fileSizeMb: 16,
  openFiles: 64,
  stackMb: 64,
  diskMb: 64,
};
const maxLimits: Limits = {
  cpuMs: 30000,
  wallMs: 60000,
  memoryMb: 2048,
  processes: 256,
  outputBytes: 16 << 20,
  fileSizeMb: 256,
  openFiles: 1024,
  stackMb: 1024,
  diskMb: 1024,
};

function limitsSchema(fallback: Limits) {
  return z
    .object({
      cpuMs: int(fallback.cpuMs),
      wallMs: int(fallback.wallMs),
      memoryMb: int(fallback.memoryMb),
      processes: int(fallback.processes),
      outputBytes: int(fallback.outputBytes),
      fileSizeMb: int(fallback.fileSizeMb),
      openFiles: int(fallback.openFiles),
      stackMb: int(fallback.stackMb),
      diskMb: int(fallback.diskMb),
    })
    .transform((l) => l as Limits);
}

const LIMIT_ENV: Record<keyof Limits, string> = {
  cpuMs: 'CPU_MS',
  wallMs: 'WALL_MS',
  memoryMb: 'MEMORY_MB',
  processes: 'PROCESSES',
  outputBytes: 'OUTPUT_BYTES',
  fileSizeMb: 'FILE_SIZE_MB',
  openFiles: 'OPEN_FILES',
  stackMb: 'STACK_MB',
  diskMb: 'DISK_MB',
};

const runtimeSchema = z.object({
  stateDir: z.string().startsWith('/').default('/var/lib/brig'),
  profilesDir: z.string().startsWith('/').default(join(repoRoot, 'profiles')),
  launcherPath: z
    .string()
    .startsWith('/')
    .default(join(repoRoot, 'build', 'brig-launcher')),
  image: z.string().default('host'),
  seccompProfile: z.string().default('default'),
  slots: int(availableParallelism()),
  maxSlots: int(1024),
  uidBase: int(600000),
  cgroupParent: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .default('brig'),
  cgroupVersion: z.enum(['auto', '1', '2']).default('auto'),
  cpuQuotaCores: z.coerce.number().positive().default(1),
  defaults: limitsSchema(defaultLimits),
  maxima: limitsSchema(maxLimits),
  maxCompileOutputBytes: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024),
  warmSlots: flag('1'),
  preparedMaxAgeMs: int(60_000),
});

// The runtime owns the type; this schema must produce exactly it.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const runtimeSchemaMatchesRuntime: Same<z.output<typeof runtimeSchema>, RuntimeConfig> = true;
void runtimeSchemaMatchesRuntime;

/** Env variable → config key, for the runtime section. */
const RUNTIME_ENV: Record<string, string> = {
  BRIG_STATE_DIR: 'stateDir',
  BRIG_PROFILES_DIR: 'profilesDir',
  BRIG_LAUNCHER: 'launcherPath',
  BRIG_IMAGE: 'image',
  BRIG_SECCOMP_PROFILE: 'seccompProfile',
  BRIG_SLOTS: 'slots',
  BRIG_MAX_SLOTS: 'maxSlots',
  BRIG_UID_BASE: 'uidBase',
  BRIG_CGROUP_PARENT: 'cgroupParent',
  BRIG_CGROUP_VERSION: 'cgroupVersion',
  BRIG_CPU_QUOTA_CORES: 'cpuQuotaCores',
  BRIG_MAX_COMPILE_OUTPUT_BYTES: 'maxCompileOutputBytes',
  BRIG_WARM_SLOTS: 'warmSlots',
  BRIG_PREPARED_MAX_AGE_MS: 'preparedMaxAgeMs',
};

/** Copies the set variables of `mapping` (env name → config key) into a raw object. */
function readEnv(env: NodeJS.ProcessEnv, mapping: Record<string, string>, raw: Record<string, unknown>): Record<string, unknown> {
  for (const [name, key] of Object.entries(mapping)) if (env[name] !== undefined && env[name] !== '') raw[key] = env[name];
  return raw;
}

/** Parses with the schema; the first issue becomes a ConfigError naming the variable. */
function parseConfig<T>(schema: z.ZodType<T>, raw: unknown, mapping: Record<string, string>): T {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const key = issue.path.join('.');
  const envName = Object.entries(mapping).find(([, k]) => k === key)?.[0] ?? key;
  throw new ConfigError('config_invalid', `configuration ${envName}: ${issue.message}`, { field: envName });
}

export function loadRuntimeConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<string, unknown>> = {}): RuntimeConfig {
  const raw = readEnv(env, RUNTIME_ENV, { defaults: {}, maxima: {} });
  for (const [key, suffix] of Object.entries(LIMIT_ENV)) {
    if (env[`BRIG_DEFAULT_${suffix}`]) (raw.defaults as Record<string, unknown>)[key] = env[`BRIG_DEFAULT_${suffix}`];
    if (env[`BRIG_MAX_${suffix}`]) (raw.maxima as Record<string, unknown>)[key] = env[`BRIG_MAX_${suffix}`];
  }
  const config = parseConfig(runtimeSchema, { ...raw, ...overrides }, RUNTIME_ENV);
  for (const key of Object.keys(LIMIT_ENV) as (keyof Limits)[]) {
    if (config.defaults[key] > config.maxima[key]) {
      throw new ConfigError(
        'config_invalid',
        `configuration BRIG_DEFAULT_${LIMIT_ENV[key]}=${config.defaults[key]} is over BRIG_MAX_${LIMIT_ENV[key]}=${config.maxima[key]}`,
        { field: `BRIG_DEFAULT_${LIMIT_ENV[key]}` },
      );
    }
  }
  return config;
}

/**
 * BRIG_TRUST_PROXY: off ('0', 'false' or unset: X-Forwarded-For is ignored),
 * a number of proxy hops in front of the API, or a comma-separated list of
 * proxy addresses or CIDRs ('loopback', '10.0.0.0/8', ...) as Express's
 * 'trust proxy' takes them.
 */
const trustProxySchema = z
  .string()
  .default('0')
  .transform((v): false | number | string[] => {
    const text = v.trim();
    if (text === '' || text === '0' || text === 'false') return false;
    if (/^[0-9]{1,2}$/.test(text)) return Number(text);
    return text
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  });

/** A Redis memory size as redis.conf takes it: bytes, or a number with kb, mb or gb. */
const redisMemorySchema = z
  .string()
  .regex(/^[0-9]{1,15}(?:[kmg]b?)?$/i, { error: 'must be bytes or a size like 512mb or 2gb' })
  .default('1gb');

/**
 * BRIG_CALLBACK_ALLOW: private receivers the operator admits, separated by
 * commas: CIDRs ('10.1.0.0/16', 'fd00::/8'), single addresses, or host
 * names (admitted by name, whatever they resolve to). Empty: callbacks go to
 * global unicast addresses only.
 */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** A last label of digits or 0x-hex makes a URL host an IPv4 address (WHATWG URL), never a name. */
const NUMERIC_LAST_LABEL = /(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)$/;

function isCallbackAllowEntry(entry: string): boolean {
  if (ipaddr.isValidCIDR(entry)) return entry.includes(':') || ipaddr.IPv4.isValidCIDRFourPartDecimal(entry);
  if (ipaddr.IPv4.isValidFourPartDecimal(entry) || ipaddr.IPv6.isValid(entry)) return true;
  return HOST_NAME.test(entry) && !NUMERIC_LAST_LABEL.test(entry);
}

const callbackAllowSchema = z
  .preprocess(
    (v) => (typeof v === 'string' ? v.split(',') : v),
    z.array(z.string().transform((entry) => entry.trim().toLowerCase().replace(/\.$/, ''))),
  )
  .transform((entries) => entries.filter(Boolean))
  .superRefine((entries, ctx) => {
    for (const entry of entries) {
      if (!isCallbackAllowEntry(entry))
        ctx.addIssue({
          code: 'custom',
          message: `${JSON.stringify(entry)} is neither a CIDR (10.0.0.0/8), an address (10.1.2.3, fd00::1) nor a host name`,
        });
    }
  })
  .default([]);

/**
 * BRIG_CALLBACK_SECRET: the Standard Webhooks signing key, 'whsec_' and the
 * base64 of 24 to 64 random bytes (the prefix may be left out).
 */
const CALLBACK_SECRET_MIN_BYTES = 24;
const CALLBACK_SECRET_MAX_BYTES = 64;
const CALLBACK_SECRET_PREFIX = 'whsec_';

/** The key bytes of a BRIG_CALLBACK_SECRET, or null when it is not in the form above. */
export function callbackSecretKey(secret: string): Buffer | null {
  const encoded = secret.startsWith(CALLBACK_SECRET_PREFIX) ? secret.slice(CALLBACK_SECRET_PREFIX.length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) return null;
  const key = Buffer.from(encoded, 'base64');
  return key.length >= CALLBACK_SECRET_MIN_BYTES && key.length <= CALLBACK_SECRET_MAX_BYTES ? key : null;
}

const callbackSecretSchema = z
  .string()
  .refine((v) => callbackSecretKey(v) !== null, {
    error: `must be whsec_ and the base64 of ${CALLBACK_SECRET_MIN_BYTES} to ${CALLBACK_SECRET_MAX_BYTES} random bytes, e.g. whsec_$(openssl rand -base64 32)`,
  })
  .optional();

const serviceSchema = z.object({
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  // Loopback unless asked: a public API without keys must be a decision, not a default.
  host: z.string().default('127.0.0.1'),
  allowAnonymous: flag('0'),
  trustProxy: trustProxySchema,
  redisUrl: z.string().url().optional(),
  apiKeys: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((k) => k.trim())
        .filter(Boolean),
    ),
  rateLimitPerMinute: z.coerce.number().int().min(0).default(600),
  queueCapacity: z.coerce.number().int().positive().default(1000),
  resultTtlSeconds: z.coerce.number().int().positive().default(3600),
  bodyLimitBytes: z.coerce
    .number()
    .int()
    .positive()
    .default(2 * 1024 * 1024),
  maxFiles: z.coerce.number().int().positive().default(32),
  maxTests: z.coerce.number().int().positive().default(100),
  /** Output bytes kept for a whole run: the compile step and every test together. */
  maxRunOutputBytes: z.coerce
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
  /** tests × wallMs of one run: how long one request may hold a sandbox slot. */
  maxRunWallMs: z.coerce
    .number()
    .int()
    .positive()
    .default(5 * 60 * 1000),
  /** Runs one client (API key, or address) may have queued or running at once. */
  clientMaxActiveRuns: z.coerce.number().int().positive().default(200),
  /** maxmemory of the private Redis of `brig serve` (policy noeviction). */
  redisMaxMemory: redisMemorySchema,
  waitTimeoutMs: z.coerce.number().int().positive().default(30_000),
  /** A request's headers and body must all have arrived this long after its connection began it; else 408 and the connection closes. */
  requestTimeoutMs: z.coerce.number().int().positive().default(30_000),
  shutdownGraceMs: z.coerce.number().int().positive().default(30_000),
  workerMetricsPort: z.coerce.number().int().min(0).max(65535).default(9464),
  jobLockMs: z.coerce.number().int().positive().default(30_000),
  stalledCheckMs: z.coerce.number().int().positive().default(5_000),
  slotSweepMs: z.coerce.number().int().positive().default(30_000),
  callbackAllow: callbackAllowSchema,
  callbackSecret: callbackSecretSchema,
  /** Delivery attempts of one callback, the first included. */
  callbackAttempts: z.coerce.number().int().positive().default(10),
  /** Delay before the first retry; each retry waits twice as long as the one before. */
  callbackBackoffMs: z.coerce.number().int().positive().default(2_000),
  /** One attempt, from the DNS lookup to the response's status line. */
  callbackTimeoutMs: z.coerce.number().int().positive().default(30_000),
  /** Callbacks one worker process delivers at once. */
  callbackConcurrency: z.coerce.number().int().positive().default(4),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** How long a log line below warn may wait to be written with others; 0: each line at once. */
  logFlushMs: z.coerce.number().int().min(0).max(10_000).default(100),
});

export type ServiceConfig = z.infer<typeof serviceSchema>;

/** Env variable → config key, for the service section. */
const SERVICE_ENV: Record<string, string> = {
  PORT: 'port',
  HOST: 'host',
  BRIG_ALLOW_ANONYMOUS: 'allowAnonymous',
  BRIG_TRUST_PROXY: 'trustProxy',
  REDIS_URL: 'redisUrl',
  BRIG_API_KEYS: 'apiKeys',
  BRIG_RATE_LIMIT_PER_MINUTE: 'rateLimitPerMinute',
  BRIG_QUEUE_CAPACITY: 'queueCapacity',
  BRIG_RESULT_TTL_SECONDS: 'resultTtlSeconds',
  BRIG_BODY_LIMIT_BYTES: 'bodyLimitBytes',
  BRIG_MAX_FILES: 'maxFiles',
  BRIG_MAX_TESTS: 'maxTests',
  BRIG_MAX_RUN_OUTPUT_BYTES: 'maxRunOutputBytes',
  BRIG_MAX_RUN_WALL_MS: 'maxRunWallMs',
  BRIG_CLIENT_MAX_ACTIVE_RUNS: 'clientMaxActiveRuns',
  BRIG_REDIS_MAXMEMORY: 'redisMaxMemory',
  BRIG_WAIT_TIMEOUT_MS: 'waitTimeoutMs',
  BRIG_REQUEST_TIMEOUT_MS: 'requestTimeoutMs',
  BRIG_SHUTDOWN_GRACE_MS: 'shutdownGraceMs',
  BRIG_WORKER_METRICS_PORT: 'workerMetricsPort',
  BRIG_JOB_LOCK_MS: 'jobLockMs',
  BRIG_STALLED_CHECK_MS: 'stalledCheckMs',
  BRIG_SLOT_SWEEP_MS: 'slotSweepMs',
  BRIG_CALLBACK_ALLOW: 'callbackAllow',
  BRIG_CALLBACK_SECRET: 'callbackSecret',
  BRIG_CALLBACK_ATTEMPTS: 'callbackAttempts',
  BRIG_CALLBACK_BACKOFF_MS: 'callbackBackoffMs',
  BRIG_CALLBACK_TIMEOUT_MS: 'callbackTimeoutMs',
  BRIG_CALLBACK_CONCURRENCY: 'callbackConcurrency',
  LOG_LEVEL: 'logLevel',
  BRIG_LOG_FLUSH_MS: 'logFlushMs',
};

export function loadServiceConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<string, unknown>> = {}): ServiceConfig {
  return parseConfig(serviceSchema, { ...readEnv(env, SERVICE_ENV, {}), ...overrides }, SERVICE_ENV);
}
