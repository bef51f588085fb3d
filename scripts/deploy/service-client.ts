/**
 * Brig's API and Prometheus's HTTP API, as test:deploy talks to them through
 * the ports the stack publishes on loopback.
 */
const REQUEST_TIMEOUT_MS = 90_000;

export interface RunRecord {
  id: string;
  status: string;
  verdict: string | null;
  startedAt?: number;
  finishedAt?: number;
  run?: { stdout: string; verdict: string } | null;
  tests?: { name: string; verdict: string }[];
}

export class BrigClient {
  constructor(
    readonly url: string,
    private readonly apiKey: string,
  ) {}

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.apiKey}`, 'content-type': 'application/json' };
  }

  /** POST /v1/runs; with wait, the final record (200), else the id (202). */
  async submit(body: object, wait: boolean): Promise<RunRecord> {
    const res = await fetch(`${this.url}/v1/runs${wait ? '?wait=true' : ''}`, {
      method: 'POST',
      headers: this.headers(),
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const answer = (await res.json()) as RunRecord;
    if (res.status !== (wait ? 200 : 202)) throw new Error(`POST /v1/runs answered ${res.status}: ${JSON.stringify(answer).slice(0, 300)}`);
    return answer;
  }

  async record(id: string): Promise<RunRecord> {
    const res = await fetch(`${this.url}/v1/runs/${id}`, { headers: this.headers(), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    return (await res.json()) as RunRecord;
  }

  /** /readyz's answer, or null while nothing answers. */
  async readiness(): Promise<{ status: string; workersLive: number } | null> {
    try {
      return (await (await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).json()) as {
        status: string;
        workersLive: number;
      };
    } catch {
      return null;
    }
  }

  async metrics(): Promise<string> {
    return (await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).text();
  }
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export class PrometheusClient {
  constructor(readonly url: string) {}

  /** An instant query; throws with Prometheus's own error when it refuses the expression. */
  async query(expr: string): Promise<PromSample[]> {
    const res = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`, {
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: PromSample[] } };
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
    return body.data!.resultType === 'vector' ? body.data!.result : [];
  }

  async rules(): Promise<{ name: string; rules: { name: string; health: string; lastError?: string }[] }[]> {
    const res = await fetch(`${this.url}/api/v1/rules`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    return ((await res.json()) as { data: { groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[] } })
      .data.groups;
  }
}

/** Polls `probe` until it returns non-null; throws `what` on timeout. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
