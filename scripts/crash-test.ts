// Crash safety, full size: SIGKILLs an ingesting and a retraining engine at seeded random moments and checks every
// guarantee after each restart (see scripts/crash/scenarios.ts). `--kills 6` is the CI size the test runs.
//   node dist/scripts/crash-test.js [--kills 50] [--seed 6] [--work-dir DIR] [--json out.json]
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runIngestScenario, runRetrainScenario, type CrashOptions } from './crash/scenarios.js';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '50' },
    seed: { type: 'string', default: '6' },
    'work-dir': { type: 'string' },
    json: { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
});

const workDir = values['work-dir'] ?? (await mkdtemp(join(tmpdir(), 'relevant-crash-')));
const options: CrashOptions = {
  workDir,
  kills: Number(values.kills),
  seed: Number(values.seed),
  images: 2000,
  retrainImages: 130,
  progress: values.quiet ? undefined : (line) => console.log(line),
};
const started = Date.now();
const reports = [await runIngestScenario(options), await runRetrainScenario(options)];
const seconds = Math.round((Date.now() - started) / 1000);
for (const r of reports) {
  console.log(`${r.scenario}: ${r.kills} kills survived${r.failures.length ? ` with ${r.failures.length} FAILURES` : ''}, ${r.completed} runs completed; ${JSON.stringify(r.figures)}`);
  for (const failure of r.failures.slice(0, 20)) console.log(`  ${failure}`);
}
console.log(`seed ${options.seed}, ${seconds} s`);
if (values.json) await writeFile(values.json, `${JSON.stringify({ seed: options.seed, seconds, reports }, null, 2)}\n`);
if (!values['work-dir']) await rm(workDir, { recursive: true, force: true });
process.exitCode = reports.some((r) => r.failures.length > 0) ? 1 : 0;
