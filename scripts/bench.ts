// The performance benchmark: `npm run bench [-- --quick] [--only model,decode,...] [--out dir] [--resume]`.
// Writes results.json and results.md to --out (default bench-results/full or bench-results/quick). Generated
// data, stores and built indexes are cached in --cache (default bench-cache/), so a second run skips building
// them; --resume also keeps the suites an interrupted run already finished in --out.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SUITES, loadAverage, machineInfo, round, type BenchContext, type SuiteName, type SuiteResult } from './bench/common.js';
import { benchDecode } from './bench/decode.js';
import { benchIngest } from './bench/ingest.js';
import { benchMemory } from './bench/memory.js';
import { benchModel } from './bench/model.js';
import { benchQuery } from './bench/query.js';
import { markdownTable, type BenchReport } from './bench/report.js';
import { benchRetrain } from './bench/retrain.js';
import { benchRetrainServing } from './bench/retrain-serving.js';
import { parseScriptArgs } from './script-args.js';

const RUNNERS: Record<SuiteName, (ctx: BenchContext) => Promise<SuiteResult>> = {
  model: benchModel,
  decode: benchDecode,
  ingest: benchIngest,
  query: benchQuery,
  retrain: benchRetrain,
  'retrain-serving': benchRetrainServing,
  memory: benchMemory,
};

const USAGE = `usage: npm run bench -- [--quick] [--only ${SUITES.join(',')}] [--out dir] [--cache dir] [--resume]`;

const { values } = parseScriptArgs(
  {
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string' },
      cache: { type: 'string', default: 'bench-cache' },
      resume: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  },
  USAGE,
);
const mode = values.quick ? 'quick' : 'full';
const only = values.only?.split(',').map((s) => s.trim()) ?? [...SUITES];
const unknown = only.filter((s) => !(SUITES as readonly string[]).includes(s));
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; choose from ${SUITES.join(', ')}`);
  process.exit(2);
}
const outDir = resolve(values.out ?? join('bench-results', mode));

async function previousReport(): Promise<BenchReport | undefined> {
  if (!values.resume) return undefined;
  const text = await readFile(join(outDir, 'results.json'), 'utf8').catch(() => undefined);
  const report = text ? (JSON.parse(text) as BenchReport) : undefined;
  return report?.mode === mode ? report : undefined;
}

const report: BenchReport = (await previousReport()) ?? { startedAt: new Date().toISOString(), mode, machine: machineInfo(), suites: {} };
const ctx: BenchContext = {
  quick: values.quick,
  runId: report.startedAt,
  cacheDir: resolve(values.cache, mode),
  log: (message) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`),
};
await mkdir(outDir, { recursive: true });
for (const suite of SUITES.filter((s) => only.includes(s))) {
  if (report.suites[suite]) {
    ctx.log(`${suite}: kept from the interrupted run`);
    continue;
  }
  const loadBefore = loadAverage();
  ctx.log(`${suite}: starting (load average ${loadBefore.join(' ')})`);
  const start = performance.now();
  const result = await RUNNERS[suite](ctx);
  const seconds = round((performance.now() - start) / 1000, 1);
  report.suites[suite] = { seconds, loadBefore, loadAfter: loadAverage(), ...result };
  ctx.log(`${suite}: done in ${seconds} s`);
  // Written after every suite, so an interrupted run can --resume.
  await writeFile(join(outDir, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
}
const table = markdownTable(report);
await writeFile(join(outDir, 'results.md'), table);
process.stdout.write(table);
