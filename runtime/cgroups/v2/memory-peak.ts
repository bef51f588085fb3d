/**
 * The v2 memory peak since reset. memory.peak has three kernel generations,
 * and each gets the most honest figure it can give; a previous run's peak is
 * never reported as this run's.
 *
 * - 'per-fd' (kernel ≥ 6.12): writing to an fd opened on memory.peak restarts
 *   the watermark at the current usage for reads through that same fd. One fd
 *   is kept open per cgroup; the peak is exact.
 * - 'since-creation' (5.19 to 6.11): memory.peak is read-only and counts from
 *   the cgroup's creation. V2RunCgroup recreates its directory before a run
 *   (in open() and renew(), before a sandbox joins) so the watermark is this run's. If a run
 *   starts in a used cgroup anyway, the lifetime peak is still exact when it
 *   rose during the run; otherwise the run stayed below an earlier run's peak,
 *   and the highest memory.current seen is reported: a lower bound.
 * - 'sampled' (< 5.19): no memory.peak; the highest memory.current seen at
 *   reset and at each usage() call. A lower bound.
 *
 * kernfs gives a file write permission only when it has a write handler, which
 * is how the kernel's own selftests tell 'per-fd' from 'since-creation'.
 */
import { hasWriteHandler, OpenCgroupFile, pathExists } from '../files.ts';
import { parseCounter } from '../parse.ts';

export type PeakMode = 'per-fd' | 'since-creation' | 'sampled';

/** Any non-empty string resets the watermark; the content is ignored. */
const PEAK_RESET_TEXT = 'reset';

export function peakModeOf(peakPath: string): PeakMode {
  if (!pathExists(peakPath)) return 'sampled';
  return hasWriteHandler(peakPath) ? 'per-fd' : 'since-creation';
}

const max = (a: bigint, b: bigint): bigint => (a > b ? a : b);

export class V2MemoryPeak {
  readonly mode: PeakMode;
  private readonly peakPath: string;
  private readonly currentPath: string;
  private peakFile?: OpenCgroupFile;
  private currentFile?: OpenCgroupFile;
  private baselineBytes = 0n;
  private sampledPeakBytes = 0n;
  /** 'since-creation': the lifetime watermark when the run started, and whether the cgroup was new then. */
  private lifetimePeakAtResetBytes = 0n;
  private freshAtReset = false;

  private constructor(dir: string, mode: PeakMode) {
    this.peakPath = `${dir}/memory.peak`;
    this.currentPath = `${dir}/memory.current`;
    this.mode = mode;
  }

  /** Picks the best mode the kernel offers for this cgroup. */
  static open(dir: string): V2MemoryPeak {
    const peak = new V2MemoryPeak(dir, peakModeOf(`${dir}/memory.peak`));
    if (peak.mode !== 'per-fd') return peak;
    try {
      peak.peakFile = OpenCgroupFile.openForReadWrite(peak.peakPath);
      peak.peakFile.write(PEAK_RESET_TEXT);
      return peak;
    } catch {
      // The file looked writable but the kernel refused the reset: count from creation instead.
      peak.close();
      return new V2MemoryPeak(dir, 'since-creation');
    }
  }

  /** Restart at the current usage. `fresh`: the cgroup was created after the previous run, so memory.peak holds no earlier run. */
  reset(fresh: boolean): void {
    if (this.mode === 'per-fd') this.peakFile?.write(PEAK_RESET_TEXT);
    this.baselineBytes = this.readCurrent();
    this.sampledPeakBytes = this.baselineBytes;
    this.freshAtReset = fresh;
    if (this.mode === 'since-creation') this.lifetimePeakAtResetBytes = this.readPeakFile();
  }

  peakBytes(): number {
    const peak = this.currentPeak();
    return peak > this.baselineBytes ? Number(peak - this.baselineBytes) : 0;
  }

  close(): void {
    this.peakFile?.close();
    this.currentFile?.close();
  }

  private currentPeak(): bigint {
    if (this.mode === 'per-fd') return this.readPeakFile();
    this.sampledPeakBytes = max(this.sampledPeakBytes, this.readCurrent());
    if (this.mode === 'sampled') return this.sampledPeakBytes;
    const lifetimePeak = this.readPeakFile();
    return this.freshAtReset || lifetimePeak > this.lifetimePeakAtResetBytes ? lifetimePeak : this.sampledPeakBytes;
  }

  /** In 'per-fd' mode the value must come through the fd that was written to. */
  private readPeakFile(): bigint {
    this.peakFile ??= OpenCgroupFile.openForReading(this.peakPath);
    return parseCounter(this.peakFile.read(), this.peakPath);
  }

  private readCurrent(): bigint {
    this.currentFile ??= OpenCgroupFile.openForReading(this.currentPath);
    return parseCounter(this.currentFile.read(), this.currentPath);
  }
}
