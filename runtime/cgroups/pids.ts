/** pids controller: the same file in v1 and v2. */
import { writeText } from './files.ts';

export function applyPidsLimit(dir: string, pids: number): void {
  writeText(`${dir}/pids.max`, String(pids));
}
