// Crash safety, full size: SIGKILLs an ingesting engine, a retraining engine and the bot in a channel backfill at
// seeded random moments and checks every guarantee after each restart (see harness/crash/). `--kills 5` is the CI
// size the test runs.
//   node dist/scripts/crash-test.js [--kills 50] [--seed 6] [--scenario ingest,retrain,backfill] [--work-dir DIR] [--json out.json]
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBackfillScenario } from '../harness/crash/backfill-scenario.js';
import { parseScriptArgs } from './script-args.js';
import { runIngestScenario, runRetrainScenario, type CrashOptions, type ScenarioReport } from '../harness/crash/scenarios.js';

const SCENARIOS: Record<ScenarioReport['scenario'], (options: CrashOptions) => Promise<ScenarioReport>> = {
  ingest: runIngestScenario,
  retrain: runRetrainScenario,
  backfill: runBackfillScenario,
};

const OPTIONS = {
  kills: { type: 'string', default: '50' },
  seed: { type: 'string', default: '6' },
  scenario: { type: 'string', default: Object.keys(SCENARIOS).join(',') },
  'work-dir': { type: 'string' },
  json: { type: 'string' },
  quiet: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const USAGE = `usage: node dist/scripts/crash-test.js [--kills 50] [--seed 6] [--scenario ${Object.keys(SCENARIOS).join(',')}] [--work-dir DIR] [--json out.json] [--quiet]`;

const { values } = parseScriptArgs({ options: OPTIONS }, USAGE);
const chosen = values.scenario.split(',').map((name) => {
  if (!(name in SCENARIOS)) {
    console.error(`unknown scenario "${name}"\n${USAGE}`);
    process.exit(2);
  }
  return name as ScenarioReport['scenario'];
});
const workDir = values['work-dir'] ?? (await mkdtemp(join(tmpdir(), 'relevant-crash-')));
const options: CrashOptions = {
  workDir,
  kills: Number(values.kills),
  seed: Number(values.seed),
  // Enough that 50 kills land before every image is stored: on a quiet machine a run stores 100-200 before its kill,
  // and with 2,000 half the kills of a full run came after the last image (runs that only re-read duplicates).
  images: 8000,
  retrainImages: 130,
  backfillMessages: 350,
  progress: values.quiet ? undefined : (line) => console.log(line),
};
const started = Date.now();
const reports: Array<ScenarioReport & { seconds: number }> = [];
for (const name of chosen) {
  const scenarioStarted = Date.now();
  const report = await SCENARIOS[name](options);
  reports.push({ ...report, seconds: Math.round((Date.now() - scenarioStarted) / 1000) });
}
const seconds = Math.round((Date.now() - started) / 1000);
for (const r of reports) {
  console.log(`${r.scenario}: ${r.kills} kills survived${r.failures.length ? ` with ${r.failures.length} FAILURES` : ''}, ${r.completed} runs completed, ${r.seconds} s; ${JSON.stringify(r.figures)}`);
  for (const failure of r.failures.slice(0, 20)) console.log(`  ${failure}`);
}
console.log(`seed ${options.seed}, ${seconds} s`);
if (values.json) await writeFile(values.json, `${JSON.stringify({ seed: options.seed, seconds, reports }, null, 2)}\n`);
if (!values['work-dir']) await rm(workDir, { recursive: true, force: true });
process.exitCode = reports.some((r) => r.failures.length > 0) ? 1 : 0;
