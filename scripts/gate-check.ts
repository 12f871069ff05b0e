/**
 * npm run gate-check -- <dataset folder or manifest.tsv> [--seed n]
 * Validates the retrain quality gate on a labelled set: many candidate keys (PCA variants, random projections,
 * noisy keys, VAEs with other seeds and settings, deliberately broken VAEs, the learned whitening) are each judged by the gate exactly as a
 * retrain judges them (held-out slice as splitForRetrain picks it, edited copies of its images; current key raw),
 * and the gate's decision is printed beside the true change of P@20 and mAP@20 against raw features.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadDataset } from '../src/eval/dataset.js';
import { extractWithCache } from '../src/eval/feature-cache.js';
import { labelIds, retrievalScores } from '../src/eval/metrics.js';
import { chooseKey } from '../src/index/key-choice.js';
import { LW_COMPONENTS, LW_EDIT_IMAGES, LW_EDITS, LW_LAMBDA } from '../src/index/retrain.js';
import { splitForRetrain, type RetrainSplit } from '../src/index/retrain-split.js';
import { createFeatureExtractor } from '../src/ml/features.js';
import { fitLearnedWhiteningKey, fitPcaKey } from '../src/ml/linear-key.js';
import { createImagePipeline } from '../src/ml/pipeline.js';
import { applyTransform } from '../src/ml/transforms.js';
import type { VaeModel } from '../src/ml/vae-model.js';
import { trainVaeInWorker } from '../src/ml/vae-worker-client.js';
import { mulberry32 } from '../src/util/random.js';
import { parseDatasetArgs } from './script-args.js';

const USAGE = 'usage: npm run gate-check -- <dataset folder or manifest.tsv> [--seed n]';
const EDITS = ['flip', 'crop70', 'colour'] as const;

type Candidate = { name: string; model: VaeModel; noise?: number };

/** A key whose μ gets Gaussian noise of `sigma` times its typical length: deliberately worse. */
function noisy(model: VaeModel, sigma: number, seed: number): VaeModel {
  const rand = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const wrapped = Object.create(model) as VaeModel;
  wrapped.encode = (features: Float32Array, count: number) => {
    const mu = model.encode(features, count);
    const l = mu.length / count;
    for (let i = 0; i < count; i++) {
      let norm = 0;
      for (let j = 0; j < l; j++) norm += mu[i * l + j] ** 2;
      const scale = (sigma * Math.sqrt(norm)) / Math.sqrt(l);
      for (let j = 0; j < l; j++) mu[i * l + j] += scale * gauss();
    }
    return mu;
  };
  return wrapped;
}

/**
 * The learned whitening as a retrain fits it (retrain.ts editPairs): pairs of up to LW_EDIT_IMAGES training rows and
 * the LW_EDITS copies of each image's engine thumbnail, made and read by the engine's image pipeline.
 */
async function learnedWhitening(split: RetrainSplit, paths: string[], seed: number): Promise<VaeModel> {
  const d = split.training.length / split.trainingCount;
  const pipeline = createImagePipeline({});
  const images = Math.min(LW_EDIT_IMAGES, split.trainingCount);
  const original: Float32Array[] = [];
  const edited: Float32Array[] = [];
  try {
    for (let j = 0; j < images; j++) {
      const position = Math.floor((j * split.trainingCount) / images);
      const { thumbnail } = await pipeline.process(await readFile(paths[split.trainingRows[position]]), 'white', true);
      for (const edit of LW_EDITS) {
        try {
          edited.push((await pipeline.process(await applyTransform(thumbnail!, edit, 'white'), 'white')).features);
          original.push(split.training.subarray(position * d, (position + 1) * d));
        } catch {
          // As in a retrain: a copy that cannot be made or read gives no pair.
        }
      }
    }
  } finally {
    await pipeline.close();
  }
  const flat = (rows: Float32Array[]) => Float32Array.from(rows.flatMap((r) => Array.from(r)));
  const pairs = { original: flat(original), edited: flat(edited), count: edited.length };
  return fitLearnedWhiteningKey(split.training, split.trainingCount, d, pairs, { components: LW_COMPONENTS, lambda: LW_LAMBDA, seed });
}

async function main(): Promise<void> {
  const { dataset: location, seed } = parseDatasetArgs(USAGE);
  const dataset = await loadDataset(location);
  const cacheDir = path.join(dataset.root, '.feature-cache');
  const extractor = await createFeatureExtractor();
  const originals = await extractWithCache(dataset.images.map((i) => ({ path: i.path })), { extractor, fit: 'pad', background: 'white', cacheDir });
  const kept = dataset.images.map((_, i) => i).filter((i) => !originals.failures.has(i));
  const d = originals.dim;
  const n = kept.length;
  const features = new Float32Array(n * d);
  kept.forEach((r, i) => features.set(originals.features.subarray(r * d, (r + 1) * d), i * d));
  const labels = labelIds(kept.map((i) => dataset.images[i].label));
  const coarse = labelIds(kept.map((i) => dataset.images[i].coarse));
  const split = splitForRetrain(features, n, d);
  const heldPaths = Array.from(split.heldRows, (r) => dataset.images[kept[r]].path);
  const sources = heldPaths.flatMap((p) => EDITS.map((transform) => ({ path: p, transform })));
  const copies = await extractWithCache(sources, { extractor, fit: 'pad', background: 'white', cacheDir });
  await extractor.close();
  const ok = sources.map((_, q) => q).filter((q) => !copies.failures.has(q));
  const edited = {
    features: Float32Array.from(ok.flatMap((q) => Array.from(copies.features.subarray(q * d, (q + 1) * d)))),
    count: ok.length,
    targets: Int32Array.from(ok, (q) => Math.floor(q / EDITS.length)),
  };
  const truth = (encode: (f: Float32Array, c: number) => Float32Array, dim: number) => retrievalScores(encode(features, n), n, dim, 20, labels, coarse);
  const raw = truth((f) => f, d);
  console.error(`${path.basename(dataset.root)}: ${n} images, held-out ${split.heldCount}, ${edited.count} edited copies; raw P@20 ${raw.precision.toFixed(3)}`);

  const train = (hyper: Record<string, number>) => trainVaeInWorker(split.training.slice(), split.trainingCount, { seed, ...hyper });
  const pca = (components: number, shrinkage: number | null) => fitPcaKey(split.training, split.trainingCount, d, { components, shrinkage, seed });
  const candidates: Candidate[] = [];
  const add = (name: string, model: VaeModel) => {
    candidates.push({ name, model });
    console.error(`candidate ${candidates.length}: ${name}`);
  };
  add('pca-64', pca(64, null));
  add('pca-64 whitened s=1', pca(64, 1));
  add('pca-64 whitened s=0.1', pca(64, 0.1));
  add('pca-64 whitened s=0', pca(64, 0));
  add('pca-128', pca(128, null));
  add('pca-32', pca(32, null));
  add('pca-16 (too few dims)', pca(16, null));
  add('pca-8 (too few dims)', pca(8, null));
  add('pca-4 (collapsed)', pca(4, null));
  add('pca-64 + noise 0.3', noisy(pca(64, null), 0.3, seed));
  add('pca-64 + noise 0.6', noisy(pca(64, null), 0.6, seed));
  add('pca-64 + noise 1.0', noisy(pca(64, null), 1, seed));
  const vae = await train({});
  add('vae default', vae);
  add(`vae default seed ${seed + 1}`, await trainVaeInWorker(split.training.slice(), split.trainingCount, { seed: seed + 1 }));
  add('vae latent 32', await train({ latent: 32 }));
  add('vae hidden 256', await train({ hidden: 256 }));
  add('vae under-trained (10 steps)', await train({ maxSteps: 10 }));
  add('vae under-trained (40 steps)', await train({ maxSteps: 40 }));
  add('vae collapsed (beta 30)', await train({ beta: 30, freeBitsPerDim: 0 }));
  add('vae + noise 0.5', noisy(vae, 0.5, seed));
  add('vae + noise 1.0', noisy(vae, 1, seed));
  add(`lw-${LW_COMPONENTS} (thumbnails' ${LW_EDITS.join(' / ')} copies)`, await learnedWhitening(split, kept.map((i) => dataset.images[i].path), seed));

  console.log(`| candidate | P@20 | Δ P@20 | mAP@20 | Δ mAP@20 | overlap | edit recall@1 | gate | truly |`);
  console.log('|---|---:|---:|---:|---:|---:|---:|---|---|');
  const confusion = { rejectWorse: 0, acceptWorse: 0, acceptBetter: 0, rejectBetter: 0, acceptNeutral: 0, rejectNeutral: 0 };
  let rawEdit = 0;
  for (const c of candidates) {
    const scores = truth((f, count) => c.model.encode(f, count), c.model.meta.latentDim);
    const choice = chooseKey(split.heldOut, split.heldCount, null, [c.model], edited);
    rawEdit = choice.raw.editRecall ?? NaN;
    const dP = scores.precision - raw.precision;
    const verdict = dP < -0.01 ? 'worse' : dP > 0.02 ? 'better' : 'neutral';
    const accepted = choice.chosen !== null;
    const key = `${accepted ? 'accept' : 'reject'}${verdict[0].toUpperCase()}${verdict.slice(1)}` as keyof typeof confusion;
    confusion[key]++;
    const s = choice.candidates[0].signals;
    console.log(
      `| ${c.name} | ${scores.precision.toFixed(3)} | ${dP >= 0 ? '+' : ''}${dP.toFixed(3)} | ${scores.map.toFixed(3)} | ${scores.map - raw.map >= 0 ? '+' : ''}${(scores.map - raw.map).toFixed(3)} | ${s.overlap.toFixed(3)} | ${s.editRecall?.toFixed(3) ?? '–'} | ${accepted ? 'accept' : 'reject'} | ${verdict} |`,
    );
  }
  console.log(`\nraw features: P@20 ${raw.precision.toFixed(3)}, mAP@20 ${raw.map.toFixed(3)}, edit recall@1 ${rawEdit.toFixed(3)}`);
  console.log(`truly worse (ΔP@20 < −0.01): ${confusion.rejectWorse} rejected, ${confusion.acceptWorse} accepted`);
  console.log(`truly better (ΔP@20 > +0.02): ${confusion.acceptBetter} accepted, ${confusion.rejectBetter} rejected`);
  console.log(`in between: ${confusion.acceptNeutral} accepted, ${confusion.rejectNeutral} rejected`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exitCode = 1;
});
