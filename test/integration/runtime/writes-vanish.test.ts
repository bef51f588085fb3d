/**
 * Whatever a program writes vanishes with its sandbox: test/probes/persist.c
 * leaves marks in /box, /tmp, /dev/shm, /etc and /, tampers with its own
 * source and binary, and a later run looks for them. Across jobs nothing is
 * shared; within a job the run steps share only what the compile step made.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Limits } from '../../../runtime/limits.ts';
import { Submission } from '../../../runtime/submission.ts';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';
import { explain, parseReport, probeSource } from './probes.ts';

const LIMITS: Partial<Limits> = { cpuMs: 1000, wallMs: 3000, memoryMb: 64, processes: 8, diskMb: 16 };
const MARKS = ['/box/new.txt', '/box/sub/deep.txt', '/tmp/x', '/dev/shm/x'];
/** Not writable by the program at all; listed so a change in that shows up here. */
const READ_ONLY_MARKS = ['/etc/x', '/x'];
const SOURCE = probeSource('persist.c');

let rt: TestRuntime;
before(async () => {
  rt = await startTestRuntime('runtime/writes-vanish', { slots: 2 });
});
after(async () => {
  await rt?.close();
});

/**
 * The files of every job workspace mounted under the state dir, once closed jobs' workspaces are released.
 * A released workspace's mount point stays for the slot's next job: it must be empty and unmounted.
 */
async function workspaces(): Promise<Map<string, string[]>> {
  await rt.runtime.settled();
  const found = new Map<string, string[]>();
  const runs = join(rt.stateDir, 'runs');
  for (const slot of readdirSync(runs)) {
    for (const id of readdirSync(join(runs, slot))) {
      const dir = join(runs, slot, id);
      const files = readdirSync(dir).sort();
      if (statSync(dir).dev !== statSync(join(runs, slot)).dev) found.set(`${slot}/${id}`, files);
      else assert.deepEqual(files, [], `the unmounted mount point ${dir} holds files`);
    }
  }
  return found;
}

test('a run writes to /box, /tmp and /dev/shm but not to /etc or /', async () => {
  const r = await rt.run('c', SOURCE, { stdin: 'write first', limits: LIMITS });
  assert.equal(r.compile?.verdict, 'ok', explain(r.compile));
  assert.equal(r.run?.verdict, 'ok', explain(r.run));
  const report = parseReport(r.run!.stdout);
  for (const mark of MARKS) assert.equal(report.get(`write ${mark}`), 'ok', `${mark} could not be written:\n${explain(r.run)}`);
  for (const mark of READ_ONLY_MARKS) assert.equal(report.get(`write ${mark}`), 'EACCES', explain(r.run));
  assert.equal(report.get('unlink /box/main'), 'ok', `the overlay should let a run replace its own binary:\n${explain(r.run)}`);
});

test('a new job sees none of the files an earlier job wrote', async () => {
  const first = await rt.run('c', SOURCE, { stdin: 'write first', limits: LIMITS });
  assert.equal(first.run?.verdict, 'ok', explain(first.run));
  const second = await rt.run('c', SOURCE, { stdin: 'check', limits: LIMITS });
  assert.equal(second.run?.verdict, 'ok', explain(second.run));
  const report = parseReport(second.run!.stdout);
  for (const mark of [...MARKS, ...READ_ONLY_MARKS]) {
    assert.equal(report.get(`read ${mark}`), 'ENOENT', `${mark} survived into another job:\n${explain(second.run)}`);
  }
  assert.deepEqual([...(await workspaces()).keys()], [], 'finished jobs left workspaces under the state dir');
});

test("a slot's next job mounts its workspace where an earlier one's was, and finds none of that job's files", async () => {
  const LIST_BOX = Buffer.from('import os\nprint(sorted(os.listdir("/box")))\n');
  const mountPoints = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const job = await Submission.open(rt.runtime, {
      language: 'python',
      files: [{ name: `job${i}.py`, content: LIST_BOX }],
      limits: LIMITS,
    });
    try {
      const mounted = [...(await workspaces())];
      assert.deepEqual(
        mounted.map(([, files]) => files),
        [[`job${i}.py`]],
        'the open job should be the one workspace mounted',
      );
      mountPoints.add(mounted[0]![0]);
      const run = await job.run(Buffer.alloc(0), { last: true });
      assert.equal(run.stdout, `['job${i}.py']\n`, explain(run));
    } finally {
      job.close();
    }
    // Its mount point is given back once unmounted, off the request's path: a job opened before that gets another.
    await rt.runtime.settled();
  }
  assert.ok(mountPoints.size <= 2, `${mountPoints.size} mount points for four jobs on two slots: none was reused`);
  assert.deepEqual([...(await workspaces()).keys()], [], 'the closed jobs left workspaces mounted');
});

test("within one job, a run step sees neither the writes nor the tampering of an earlier run step, only the compile step's artifact", async () => {
  const job = await Submission.open(rt.runtime, {
    language: 'c',
    files: [{ name: 'main.c', content: Buffer.from(SOURCE) }],
    limits: LIMITS,
  });
  try {
    const compile = await job.compile();
    assert.equal(compile?.verdict, 'ok', explain(compile));
    const compiled = await workspaces();
    assert.deepEqual([...compiled.values()], [['main', 'main.c']], 'the workspace after compile should hold the source and the binary');

    const first = await job.run(Buffer.from('write first'));
    assert.equal(first.verdict, 'ok', explain(first));
    const firstReport = parseReport(first.stdout);
    assert.match(
      firstReport.get('stat /box/main') ?? '',
      /^ok \(\d+ bytes, mode 755\)$/,
      `the first run does not see the compiled binary:\n${explain(first)}`,
    );
    assert.deepEqual(await workspaces(), compiled, "the first run's writes reached the job workspace in the host");

    const second = await job.run(Buffer.from('check'));
    assert.equal(second.verdict, 'ok', explain(second));
    assert.doesNotMatch(second.stdout, /tampered/, `the first run's replacement binary ran:\n${explain(second)}`);
    const secondReport = parseReport(second.stdout);
    for (const mark of [...MARKS, ...READ_ONLY_MARKS]) {
      assert.equal(
        secondReport.get(`read ${mark}`),
        'ENOENT',
        `${mark} written by the first run step is visible to the second:\n${explain(second)}`,
      );
    }
    assert.equal(
      secondReport.get('stat /box/main'),
      firstReport.get('stat /box/main'),
      `the compiled binary changed between runs:\n${explain(second)}`,
    );
    assert.equal(
      secondReport.get('stat /box/main.c'),
      firstReport.get('stat /box/main.c'),
      `the appended source survived into the second run:\n${explain(second)}`,
    );
  } finally {
    job.close();
  }
  assert.deepEqual([...(await workspaces()).keys()], [], 'the closed job left its workspace under the state dir');
});

test("a job's last run step gets the workspace itself, read-write, as a compile does; no run step may follow it", async () => {
  // Where /box comes from (the type of the top mount there: the staging tmpfs lies under it), what the step finds there, then a mark of its own.
  const script = `sed -n 's/^[^ ]* [^ ]* [^ ]* [^ ]* \\/box .* - \\([^ ]*\\) .*/\\1/p' /proc/self/mountinfo | tail -n 1; ls /box; echo mark > /box/mark`;
  const open = (limits?: Partial<Limits>) =>
    Submission.open(rt.runtime, { language: 'bash', files: [{ name: 'main.sh', content: Buffer.from(script) }], limits });
  const job = await open();
  try {
    const first = await job.run(Buffer.alloc(0));
    assert.equal(first.verdict, 'ok', explain(first));
    assert.equal(first.stdout, 'overlay\nmain.sh\n', 'a run that is not the last sees the workspace under an overlay');
    const last = await job.run(Buffer.alloc(0), { last: true });
    assert.equal(last.verdict, 'ok', explain(last));
    assert.equal(last.stdout, 'tmpfs\nmain.sh\n', "the last run gets the workspace's own tmpfs, without the earlier run's mark");
    assert.deepEqual([...(await workspaces()).values()], [['main.sh', 'mark']], 'the last run wrote the workspace itself');
    await assert.rejects(job.run(Buffer.alloc(0)), /runs nothing after its last step/);
    await assert.rejects(job.compile(), /runs nothing after its last step/);
  } finally {
    job.close();
  }
  assert.deepEqual([...(await workspaces()).keys()], [], 'the closed job left its workspace under the state dir');

  // A disk limit that is not the workspace's size keeps the overlay, whose upper layer that limit caps.
  const smaller = await open({ diskMb: 16 });
  try {
    const last = await smaller.run(Buffer.alloc(0), { last: true, limits: { ...smaller.runLimits, diskMb: 8 } });
    assert.equal(last.verdict, 'ok', explain(last));
    assert.equal(last.stdout, 'overlay\nmain.sh\n');
  } finally {
    smaller.close();
  }
});
