import { probeVersion } from '../../runtime/languages/version.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import type { WorkerHeartbeat } from '../shared/contract.ts';
import type { Logger } from '../shared/logger.ts';

export type PublishedLanguage = WorkerHeartbeat['languages'][number];

/**
 * The languages this worker can really run, each with the version its
 * toolchain reports from inside a sandbox, its default file name, and its
 * limits (defaults, compile step, maxima): everything the API needs to check
 * a request, so that the API reads nothing about languages or limits from
 * its own disk or environment. Asked once at start: a language whose
 * toolchain is missing from the image, or whose probe fails, is left out, so
 * the API never sends this worker a run it cannot do.
 */
export async function probeLanguages(runtime: Runtime, logger: Logger): Promise<PublishedLanguage[]> {
  const probes = [...runtime.languages.values()].map(async (language): Promise<PublishedLanguage | null> => {
    const missing = runtime.missingTools(language);
    if (missing.length) {
      logger.info({ language: language.name, missing }, 'language not offered: its toolchain is not in the image');
      return null;
    }
    try {
      const { run, compile } = runtime.limitsOf(language);
      const version = await probeVersion(runtime, language.name);
      return {
        name: language.name,
        displayName: language.displayName,
        version,
        sourceFile: language.sourceFile,
        limits: run,
        compileLimits: compile,
        maxLimits: runtime.config.maxima,
      };
    } catch (error) {
      logger.warn({ language: language.name, err: error }, 'language not offered: its version probe failed');
      return null;
    }
  });
  const languages = (await Promise.all(probes)).filter((l): l is PublishedLanguage => l !== null);
  logger.info({ languages: languages.map((l) => `${l.name} (${l.version})`) }, 'languages probed');
  return languages;
}
