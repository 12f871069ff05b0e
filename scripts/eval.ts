/**
 * npm run eval -- <dataset> [--out dir] [--seed n] [--quick] [--fit crop|pad] [--cache dir]
 * Writes report.md, report.json and chart.png to --out (default eval-out/) and prints the Markdown.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadDataset } from '../src/eval/dataset.js';
import { evaluateRelevance } from '../src/eval/evaluate.js';
import { preprocessFit } from '../src/ml/pipeline.js';
import { chartSpec, markdownReport, renderChartPng } from '../src/eval/report.js';
import { createFeatureExtractor } from '../src/ml/features.js';
import { parseScriptArgs } from './script-args.js';

const USAGE = 'usage: npm run eval -- <dataset folder or manifest.tsv> [--out dir] [--seed n] [--quick] [--fit crop|pad] [--cache dir]';

async function main(): Promise<void> {
  const { values, positionals } = parseScriptArgs(
    {
      allowPositionals: true,
      options: {
        out: { type: 'string', default: 'eval-out' },
        seed: { type: 'string', default: '1' },
        quick: { type: 'boolean', default: false },
        // The engine's own preprocessing unless told otherwise, so the report speaks for what users get.
        fit: { type: 'string', default: preprocessFit() },
        cache: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    },
    USAGE,
  );
  const seed = Number(values.seed);
  if (positionals.length !== 1 || !Number.isInteger(seed) || seed < 0 || (values.fit !== 'crop' && values.fit !== 'pad')) {
    console.error(USAGE);
    process.exitCode = 2;
    return;
  }
  const dataset = await loadDataset(positionals[0]);
  // Beside the dataset by default: features depend on the images, not on where a report goes.
  const cacheDir = values.cache ?? path.join(dataset.root, '.feature-cache');
  const extractor = await createFeatureExtractor();
  let report;
  try {
    report = await evaluateRelevance(dataset, {
      extractor,
      cacheDir,
      seed,
      quick: values.quick,
      fit: values.fit,
      log: (line) => console.error(line),
    });
  } finally {
    await extractor.close();
  }
  const markdown = markdownReport(report);
  await mkdir(values.out, { recursive: true });
  await writeFile(path.join(values.out, 'report.md'), markdown);
  await writeFile(path.join(values.out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(path.join(values.out, 'chart.png'), await renderChartPng(chartSpec(report)));
  process.stdout.write(markdown);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
