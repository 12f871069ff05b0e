/**
 * npm run feedback-eval -- <dataset folder or manifest.tsv> [--seed n] [--alpha a --beta b --gamma c] [--centre off]
 * Relevance feedback with simulated askers (src/eval/feedback-sim.ts): P@20 with no feedback and after one and two
 * rounds (like up to 2 relevant, dislike up to 2 irrelevant results among the 20 shown), on the keys the engine would
 * use: raw features, and PCA-64 fitted on a retrain's training rows exactly as a retrain fits it. Features come from
 * the dataset's feature cache (the engine's preprocessing: letterboxed onto white). `--centre off` moves the query
 * without first subtracting the mean of the keys (the engine's Rocchio before it was centred), for comparison.
 */
import path from 'node:path';
import { loadDataset } from '../src/eval/dataset.js';
import { extractWithCache } from '../src/eval/feature-cache.js';
import { simulateFeedback } from '../src/eval/feedback-sim.js';
import { labelIds } from '../src/eval/metrics.js';
import { ROCCHIO } from '../src/index/feedback.js';
import { splitForRetrain } from '../src/index/retrain-split.js';
import { createFeatureExtractor } from '../src/ml/features.js';
import { fitPcaKey } from '../src/ml/linear-key.js';
import { parseDatasetArgs } from './script-args.js';

const USAGE = 'usage: npm run feedback-eval -- <dataset folder or manifest.tsv> [--seed n] [--alpha a] [--beta b] [--gamma c] [--centre on|off]';

async function main(): Promise<void> {
  const { dataset: location, seed, options } = parseDatasetArgs(USAGE, ['alpha', 'beta', 'gamma', 'centre']);
  const centred = (options.centre ?? 'on') === 'on';
  const weight = (name: 'alpha' | 'beta' | 'gamma') => (options[name] === undefined ? ROCCHIO[name] : Number(options[name]));
  const weights = { alpha: weight('alpha'), beta: weight('beta'), gamma: weight('gamma') };
  if (Object.values(weights).some((w) => !Number.isFinite(w)) || !['on', 'off', undefined].includes(options.centre)) {
    console.error(USAGE);
    process.exit(2);
  }
  const dataset = await loadDataset(location);
  const extractor = await createFeatureExtractor();
  const set = await extractWithCache(dataset.images.map((i) => ({ path: i.path })), { extractor, fit: 'pad', background: 'white', cacheDir: path.join(dataset.root, '.feature-cache') });
  await extractor.close();
  const kept = dataset.images.map((_, i) => i).filter((i) => !set.failures.has(i));
  const d = set.dim;
  const n = kept.length;
  const features = new Float32Array(n * d);
  kept.forEach((r, i) => features.set(set.features.subarray(r * d, (r + 1) * d), i * d));
  const labels = labelIds(kept.map((i) => dataset.images[i].label));
  const split = splitForRetrain(features, n, d);
  // The engine's PCA candidate (engine.ts: PCA_SHRINKAGE null), fitted on the training rows (fewer than its 3,000-row cap).
  const pca = fitPcaKey(split.training, split.trainingCount, d, { components: 64, shrinkage: null, seed });
  const keys = [
    { name: 'raw', keys: features, dim: d },
    { name: 'pca-64', keys: pca.encode(features, n), dim: 64 },
  ];
  const w = `α ${weights.alpha}, β ${weights.beta}, γ ${weights.gamma}, centred ${centred ? 'on' : 'off'}`;
  console.log(`${path.basename(dataset.root)}: ${n} images, seed ${seed}, ${w}`);
  console.log('| set | key | seed | P@20 no feedback | after 1 round | Δ | after 2 rounds | Δ |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const key of keys) {
    const [p0, p1, p2] = simulateFeedback(key.keys, n, key.dim, labels, { k: 20, rounds: 2, perRound: 2, seed, weights, centred });
    const delta = (p: number) => `${p - p0 >= 0 ? '+' : ''}${(p - p0).toFixed(3)}`;
    console.log(`| ${path.basename(dataset.root)} | ${key.name} | ${seed} | ${p0.toFixed(3)} | ${p1.toFixed(3)} | ${delta(p1)} | ${p2.toFixed(3)} | ${delta(p2)} |`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exitCode = 1;
});
