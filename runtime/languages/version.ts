import type { Runtime } from '../runtime.ts';
import { Submission } from '../submission.ts';

/** A language's toolchain version, asked of the toolchain itself inside a sandbox. */
export async function probeVersion(runtime: Runtime, languageName: string): Promise<string> {
  const language = runtime.language(languageName);
  const job = await Submission.open(runtime, { language: languageName, files: [{ name: language.sourceFile, content: Buffer.alloc(0) }] });
  try {
    // A compiler gets the room of a compile step to say its version (javac starts a JVM).
    const result = await job.runCommand(language.versionCommand, Buffer.alloc(0), {
      limits: job.compileLimits ?? job.runLimits,
      last: true,
    });
    const text = (result.stdout.trim() || result.stderr.trim()).split('\n')[0]!.trim();
    if (result.verdict !== 'ok' || !text) {
      throw new Error(
        `${language.versionCommand.join(' ')} ended with ${result.verdict} (exit ${result.exitCode}, signal ${result.signal}): ${result.stderr.trim().slice(0, 200)}`,
      );
    }
    return text;
  } finally {
    job.close();
  }
}
