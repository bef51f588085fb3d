#!/usr/bin/env node
// The container's HEALTHCHECK: asks the brig process of this container
// whether it is alive, by the part it runs. `brig api` and `brig serve`
// answer GET /healthz on PORT; `brig worker` serves only its metrics, on
// BRIG_WORKER_METRICS_PORT. The part is read from the brig process's own
// command line, so one image (and one check) serves every part.
// Exit 0 healthy, 1 not (as Docker, podman and Kubernetes exec probes read it).
import { readdirSync, readFileSync } from 'node:fs';

const BRIG_ENTRY = '/opt/brig/bin/brig.js';
const PROBE_TIMEOUT_MS = 2_000;
const DEFAULT_PORT = '8080';
const DEFAULT_WORKER_METRICS_PORT = '9464';

/** The first argument after brig.js of the container's brig process, or null. */
function brigPart() {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv;
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone while we looked
    }
    const at = argv.indexOf(BRIG_ENTRY);
    if (at >= 0 && argv[at + 1]) return argv[at + 1];
  }
  return null;
}

const part = brigPart();
if (part === null) {
  console.error(`unhealthy: no process runs ${BRIG_ENTRY}`);
  process.exit(1);
}
const url =
  part === 'worker'
    ? `http://127.0.0.1:${process.env.BRIG_WORKER_METRICS_PORT || DEFAULT_WORKER_METRICS_PORT}/metrics`
    : `http://127.0.0.1:${process.env.PORT || DEFAULT_PORT}/healthz`;
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  if (!response.ok) throw new Error(`status ${response.status}`);
  process.exit(0);
} catch (error) {
  console.error(`unhealthy: brig ${part}: ${url}: ${error.message}`);
  process.exit(1);
}
