/**
 * What an unprivileged local user of the host can reach while `brig serve`
 * runs a submission: nothing. Its private Redis has no TCP port, its socket
 * sits in a 0700 folder, and even root needs the generated password, with
 * the admin commands renamed away; the running submission's workspace (found
 * in /proc/self/mountinfo, which anyone can read) and the state dir's private
 * folders refuse to be read.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { type ServeProcess, startServeProcess, stopServeProcess } from '../../../loadtest/serve-process.ts';
import { redisConnectionOptions } from '../../../services/shared/redis.ts';
import { uidBase } from '../../helpers/uid-bases.ts';

/** The unprivileged user that plays a local attacker. */
const NOBODY = 65534;
const SECRET = 'the-answer-is-42';
const RUN_SLEEP_S = 4;

let serve: ServeProcess;
let runId: string;

before(async () => {
  serve = await startServeProcess({
    name: 'test-local-users',
    uidBase: uidBase('e2e/local-users'),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const res = await fetch(`${serve.url}/v1/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      language: 'python',
      files: [{ name: 'main.py', content: `import time\n# ${SECRET}\ntime.sleep(${RUN_SLEEP_S})\n` }],
      limits: { wallMs: (RUN_SLEEP_S + 2) * 1000 },
    }),
  });
  assert.equal(res.status, 202);
  runId = ((await res.json()) as { id: string }).id;
  for (;;) {
    const record = (await (await fetch(`${serve.url}/v1/runs/${runId}`)).json()) as { status: string };
    if (record.status === 'running') break;
    await sleep(50);
  }
});

after(async () => {
  if (serve) await stopServeProcess(serve);
});

/** Runs a python snippet as the unprivileged user; returns what it printed. */
function asNobody(code: string, ...args: string[]): string {
  const result = spawnSync('python3', ['-c', code, ...args], { uid: NOBODY, gid: NOBODY, encoding: 'utf8', timeout: 10_000 });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim();
}

/** Lists each directory and reads each file it is given, printing the outcome. */
const TRY_READ = `
import os, sys
for path in sys.argv[1:]:
    try:
        try:
            os.listdir(path)
        except NotADirectoryError:
            open(path, "rb").read(1)
        print(path, "READ")
    except OSError as e:
        print(path, type(e).__name__)
`;

/** Inodes of the sockets a process holds. */
function socketInodes(pid: number): Set<string> {
  return new Set(
    readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? [];
      } catch {
        return []; // closed meanwhile
      }
    }),
  );
}

test("the private Redis has no TCP port, and its socket is out of a local user's reach", () => {
  const redisPid = Number(readFileSync(join(serve.stateDir, 'redis', 'redis.pid'), 'utf8'));
  const TCP_LISTEN = '0A';
  const ours = socketInodes(redisPid);
  const listeners = ['tcp', 'tcp6']
    .flatMap((table) => readFileSync(`/proc/${redisPid}/net/${table}`, 'utf8').split('\n').slice(1))
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[3] === TCP_LISTEN && ours.has(fields[9]!));
  assert.deepEqual(listeners, [], 'redis-server listens on no TCP port');

  const socketPath = join(serve.stateDir, 'redis', 'redis.sock');
  const out = asNobody(
    `
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1]); print("CONNECTED")
except OSError as e:
    print(type(e).__name__)
`,
    socketPath,
  );
  assert.equal(out, 'PermissionError');
});

test('without the password even root gets nothing, and with it the admin commands are gone', async () => {
  const socket = join(serve.stateDir, 'redis', 'redis.sock');
  // A raw RESP exchange: no client library's ready checks in the way.
  const reply = await new Promise<string>((resolve, reject) => {
    const conn = createConnection(socket, () => conn.write('KEYS *\r\n'));
    conn.once('data', (data) => {
      conn.destroy();
      resolve(data.toString());
    });
    conn.once('error', reject);
  });
  assert.match(reply, /^-NOAUTH/);
  const password = readFileSync(join(serve.stateDir, 'redis', 'password'), 'utf8').trim();
  const authed = new Redis({ ...redisConnectionOptions(`unix://${socket}?password=${password}`), maxRetriesPerRequest: 0 });
  try {
    assert.equal(await authed.exists(`brig:run:${runId}`), 1);
    for (const command of ['CONFIG', 'FLUSHALL', 'DEBUG', 'REPLICAOF', 'MONITOR', 'SHUTDOWN']) {
      await assert.rejects(authed.call(command, 'GET', 'x'), /unknown command/i, command);
    }
  } finally {
    authed.disconnect();
  }
});

test("a running submission's workspace, found in mountinfo, cannot be read by a local user; nor the state dir's private folders", () => {
  const workspaces = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((mount) => mount.startsWith(`${join(serve.stateDir, 'runs')}/`));
  assert.equal(workspaces.length, 1, "the run's workspace is mounted");
  const workspace = workspaces[0]!;
  const out = asNobody(
    TRY_READ,
    workspace,
    join(workspace, 'main.py'),
    serve.stateDir,
    join(serve.stateDir, 'seccomp'),
    join(serve.stateDir, 'slots'),
    join(serve.stateDir, 'redis'),
    join(serve.stateDir, 'redis', 'password'),
  );
  for (const line of out.split('\n')) assert.match(line, /PermissionError$/, line);
  assert.doesNotMatch(out, new RegExp(SECRET));
});
