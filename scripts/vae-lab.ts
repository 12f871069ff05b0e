// Trains the engine's VAE under named recipes on a development set's cached features (pad, white background) and
// scores μ by cosine (P@20, mAP@20, coarse P@20): the runs behind docs/relevance.md, "Why the engine's VAE lost to a
// plain one". Recipes: old, ref, default, a one-factor name (see ONE_FACTOR), ref-<factor> (the reference with that
// factor put back), json:{...} (settings over the old defaults). --retrain trains on what splitForRetrain leaves.
// Usage: node dist/scripts/vae-lab.js LOCATION SEED RECIPE[,RECIPE...] [--retrain]   (one JSON line per run)
import path from 'node:path';
import { loadDataset } from '../src/eval/dataset.js';
import { extractWithCache } from '../src/eval/feature-cache.js';
import { labelIds, retrievalScores } from '../src/eval/metrics.js';
import { splitForRetrain } from '../src/index/retrain-split.js';
import { createFeatureExtractor } from '../src/ml/features.js';
import { trainingPlan, type VaeHyperParams } from '../src/ml/vae-hyper.js';
import { trainVaeInWorker } from '../src/ml/vae-worker-client.js';

type LabSet = { name: string; features: Float32Array; n: number; dim: number; labels: Int32Array; coarse: Int32Array };

/** The set's features with the chosen preprocessing (pad, white background), from its feature cache. */
async function loadSet(location: string): Promise<LabSet> {
  const dataset = await loadDataset(location);
  const extractor = await createFeatureExtractor();
  const cacheDir = path.join(dataset.root, '.feature-cache');
  const ex = await extractWithCache(dataset.images.map((i) => ({ path: i.path })), { extractor, fit: 'pad', background: 'white', cacheDir });
  await extractor.close();
  const kept = dataset.images.map((_, i) => i).filter((i) => !ex.failures.has(i));
  const features = new Float32Array(kept.length * ex.dim);
  kept.forEach((r, i) => features.set(ex.features.subarray(r * ex.dim, (r + 1) * ex.dim), i * ex.dim));
  const labels = labelIds(kept.map((i) => dataset.images[i].label));
  const coarse = labelIds(kept.map((i) => dataset.images[i].coarse));
  return { name: path.basename(dataset.root), features, n: kept.length, dim: ex.dim, labels, coarse };
}

/** Everything the reference recipe changes from the engine's old defaults. */
const REFERENCE: Partial<VaeHyperParams> = {
  inputTransform: 'none',
  reconScale: 1,
  freeBitsPerDim: 0,
  minSteps: 600,
  maxSteps: 600,
  batchSize: 128,
  klWarmupFraction: 0.3,
  heldOutFraction: 0,
};

/** The engine's defaults before this change, spelled out so that the runs do not move with DEFAULT_VAE_HYPER. */
const OLD: Partial<VaeHyperParams> = {
  inputTransform: 'l2',
  reconScale: 0.5,
  freeBitsPerDim: 0.25,
  minSteps: 0,
  maxSteps: 500,
  epochs: 50,
  batchSize: 256,
  klWarmupFraction: 0.2,
  heldOutFraction: 0.05,
};

const ONE_FACTOR: Record<string, Partial<VaeHyperParams>> = {
  none: { inputTransform: 'none' },
  recon1: { reconScale: 1 },
  fb0: { freeBitsPerDim: 0 },
  steps600: { minSteps: 600, maxSteps: 600 },
  batch128: { batchSize: 128 },
  warm30: { klWarmupFraction: 0.3 },
  held0: { heldOutFraction: 0 },
};

function recipe(name: string): Partial<VaeHyperParams> {
  if (name === 'old') return OLD;
  if (name === 'ref') return { ...OLD, ...REFERENCE };
  if (name === 'default') return {};
  if (name.startsWith('ref-')) {
    // Reverse ablation: the reference with one factor put back to the old default.
    const factor = ONE_FACTOR[name.slice(4)];
    if (!factor) throw new Error(`unknown factor in ${name}`);
    const back = Object.fromEntries(Object.keys(factor).map((k) => [k, OLD[k as keyof VaeHyperParams]]));
    return { ...OLD, ...REFERENCE, ...back };
  }
  if (name.startsWith('json:')) return { ...OLD, ...(JSON.parse(name.slice(5)) as Partial<VaeHyperParams>) };
  const factor = ONE_FACTOR[name];
  if (!factor) throw new Error(`unknown recipe ${name}`);
  return { ...OLD, ...factor };
}

async function main(): Promise<void> {
  const [location, seedText, configs, flag] = process.argv.slice(2);
  const set = await loadSet(location);
  const seed = Number(seedText);
  for (const config of configs.split(',')) {
    if (config === 'raw') {
      const r = retrievalScores(set.features, set.n, set.dim, 20, set.labels, set.coarse);
      console.log(JSON.stringify({ set: set.name, config, p20: +r.precision.toFixed(4), map20: +r.map.toFixed(4), coarse20: +r.coarsePrecision.toFixed(4) }));
      continue;
    }
    let training = set.features;
    let trainingCount = set.n;
    if (flag === '--retrain') ({ training, trainingCount } = splitForRetrain(set.features, set.n, set.dim));
    const started = performance.now();
    const model = await trainVaeInWorker(training.slice(), trainingCount, { ...recipe(config), seed });
    const seconds = (performance.now() - started) / 1000;
    const mu = model.encode(set.features, set.n);
    const r = retrievalScores(mu, set.n, model.meta.latentDim, 20, set.labels, set.coarse);
    const out = {
      set: set.name,
      seed,
      config: config + (flag === '--retrain' ? ' (retrain 90%)' : ''),
      p20: +r.precision.toFixed(4),
      map20: +r.map.toFixed(4),
      coarse20: +r.coarsePrecision.toFixed(4),
      seconds: +seconds.toFixed(1),
      epochs: model.meta.epochsTrained,
      steps: trainingPlan(trainingCount, model.meta.hyper).stepsPerEpoch * model.meta.epochsTrained,
      trainedOn: trainingCount,
      activeUnits: model.meta.activeUnits,
      heldOut: model.meta.loss.heldOut,
    };
    console.log(JSON.stringify(out));
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
