// Indexes every sample of a hostile corpus in one process (forked by test/hostile-input.test.ts, which may run it
// under strace) and prints one JSON line: each sample's outcome and the peak RSS after it. Writes nothing itself.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAppError } from '../../src/errors.js';
import { createEngine } from '../../src/index/engine.js';

export interface RunnerSample {
  file: string;
  kind: string;
  variant?: string;
}

export interface RunnerOutcome {
  kind: string;
  variant?: string;
  /** 'indexed', 'duplicate', an AppError code, or 'THROWN' for anything else. */
  outcome: string;
  message: string;
  width?: number;
  height?: number;
  /** process.resourceUsage().maxRSS after this sample, in KiB. */
  maxRssKiB: number;
}

export interface RunnerReport {
  /** Peak RSS once the model was loaded by indexing one ordinary image, before any hostile sample. */
  warmRssKiB: number;
  outcomes: RunnerOutcome[];
}

const [dataDir, corpusDir] = process.argv.slice(2);
const samples = JSON.parse(await readFile(join(corpusDir, 'samples.json'), 'utf8')) as { warmUp: string; samples: RunnerSample[] };
const engine = createEngine({ dataDir, thumbnails: true });
await engine.index(await readFile(join(corpusDir, samples.warmUp)), { source: 'warm-up' });
const report: RunnerReport = { warmRssKiB: process.resourceUsage().maxRSS, outcomes: [] };
for (const sample of samples.samples) {
  const base = { kind: sample.kind, variant: sample.variant };
  try {
    const result = await engine.index(await readFile(join(corpusDir, sample.file)), { source: sample.file });
    const { width, height } = result.record;
    report.outcomes.push({ ...base, outcome: result.status, message: '', width, height, maxRssKiB: process.resourceUsage().maxRSS });
  } catch (error) {
    const outcome = isAppError(error) ? error.code : 'THROWN';
    const message = error instanceof Error ? error.message : String(error);
    report.outcomes.push({ ...base, outcome, message, maxRssKiB: process.resourceUsage().maxRSS });
  }
}
await engine.close();
process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
