/**
 * The relevance evaluation: every image of a labelled set queries all the others (leave-one-out) under each
 * index key, edited copies of a sample query the originals, and VAEs are trained as /retrain would train
 * them, on the set itself, on subsets of growing size, and on the other half of the coarse categories.
 */
import { cosineNeighbours, neighbourOverlap, scoreVae } from '../index/quality-gate.js';
import type { FeatureExtractor } from '../ml/features.js';
import type { VaeHyperParams } from '../ml/vae-hyper.js';
import { VaeModel } from '../ml/vae-model.js';
import { MIN_VAE_TRAINING_SIZE } from '../ml/vae-train.js';
import { trainVaeInWorker } from '../ml/vae-worker-client.js';
import type { Dataset } from './dataset.js';
import { extractWithCache, type Background, type ExtractedSet, type Fit } from './feature-cache.js';
import { cosineRobustness, labelIds, rankOfOriginals, retrievalScores, type RetrievalScores, type RobustnessScores } from './metrics.js';
import { fitPca, projectPca } from '../ml/pca.js';
import { seededShuffle } from '../util/random.js';
import { ROBUSTNESS_TRANSFORMS, hammingDistance, type RobustnessTransform } from '../ml/transforms.js';

export const K = 20;
export const LEARNING_CURVE_SIZES = [100, 250, 500, 1000] as const;

export type EvalOptions = {
  extractor: FeatureExtractor;
  cacheDir: string;
  seed: number;
  /** Fewer robustness queries, fewer epochs: a smoke run, not numbers to report. */
  quick: boolean;
  /** The preprocessing behind every key; the other one is measured on raw features for comparison. */
  fit: Fit;
  background?: Background;
  hyper?: Partial<VaeHyperParams>;
  log?: (line: string) => void;
};

export type Robustness = RobustnessScores & { byTransform: Record<RobustnessTransform, RobustnessScores> };

export type KeyResult = RetrievalScores & {
  key: string;
  dim: number;
  /** float32 key bytes the index holds per image. */
  bytesPerImage: number;
  robustness?: Robustness;
  activeUnits?: number;
  meanKlPerDim?: number;
};

export type TransferResult = {
  /** Coarse categories evaluated on, and those the fitted models were trained on. */
  evaluatedOn: string[];
  trainedOn: string[];
  images: number;
  raw: RetrievalScores;
  pcaOther: RetrievalScores;
  vaeOther: RetrievalScores;
  vaeOwn: RetrievalScores;
};

export type CurvePoint = { size: number; raw: RetrievalScores; vae: RetrievalScores; overlapWithRaw: number; activeUnits: number };

export type EvalReport = {
  images: number;
  failures: { path: string; reason: string }[];
  labels: number;
  coarseLabels: number;
  seed: number;
  quick: boolean;
  fit: Fit;
  keys: KeyResult[];
  /** Raw-feature scores under the other preprocessing. */
  otherFit: { fit: Fit; scores: RetrievalScores };
  robustnessQueries: number;
  transfer: TransferResult[];
  learningCurve: CurvePoint[];
  vaeHyper: VaeHyperParams | null;
  seconds: number;
};

function gather(set: Float32Array, dim: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => out.set(set.subarray(r * dim, (r + 1) * dim), i * dim));
  return out;
}

type Labelled = { features: Float32Array; n: number; dim: number; labels: Int32Array; coarse: Int32Array };

function subset(all: Labelled, rows: readonly number[]): Labelled {
  return {
    features: gather(all.features, all.dim, rows),
    n: rows.length,
    dim: all.dim,
    labels: Int32Array.from(rows, (r) => all.labels[r]),
    coarse: Int32Array.from(rows, (r) => all.coarse[r]),
  };
}

const scoreKeys = (keys: Float32Array, set: Labelled, dim: number): RetrievalScores =>
  retrievalScores(keys, set.n, dim, Math.min(K, set.n - 1), set.labels, set.coarse);

/** Edited copies of a sample of the images; queries[i] is a copy of database row targets[i]. */
type RobustnessSet = { transforms: RobustnessTransform[]; targets: Int32Array; extracted: ExtractedSet; rows: number[] };

function robustnessOf(
  set: RobustnessSet,
  rank: (queryRows: number[], targets: Int32Array) => RobustnessScores,
): Robustness {
  const byTransform = {} as Record<RobustnessTransform, RobustnessScores>;
  for (const transform of ROBUSTNESS_TRANSFORMS) {
    const rows = set.rows.filter((q) => set.transforms[q] === transform);
    byTransform[transform] = rank(rows, Int32Array.from(rows, (q) => set.targets[q]));
  }
  const all = rank(set.rows, Int32Array.from(set.rows, (q) => set.targets[q]));
  return { ...all, byTransform };
}

function cosineRobustnessOf(set: RobustnessSet, encode: (features: Float32Array, n: number) => Float32Array, db: Float32Array, n: number, dim: number): Robustness {
  const encoded = encode(gather(set.extracted.features, set.extracted.dim, set.rows), set.rows.length);
  const position = new Map(set.rows.map((q, i) => [q, i]));
  return robustnessOf(set, (rows, targets) => {
    const keys = gather(encoded, dim, rows.map((q) => position.get(q)!));
    return cosineRobustness(keys, rows.length, db, n, dim, targets);
  });
}

function dHashRobustness(set: RobustnessSet, hashes: Uint32Array, n: number): Robustness {
  return robustnessOf(set, (rows, targets) => {
    const sims = new Float32Array(rows.length * n);
    rows.forEach((q, i) => {
      const h: [number, number] = [set.extracted.hashes[2 * q], set.extracted.hashes[2 * q + 1]];
      for (let j = 0; j < n; j++) sims[i * n + j] = 64 - hammingDistance(h, [hashes[2 * j], hashes[2 * j + 1]]);
    });
    return rankOfOriginals(sims, rows.length, n, targets);
  });
}

async function trainVae(features: Float32Array, n: number, options: EvalOptions): Promise<VaeModel> {
  const hyper = { ...options.hyper, seed: options.seed, ...(options.quick ? { epochs: 5 } : {}) };
  // The worker takes ownership of the array it is given; callers keep theirs.
  return trainVaeInWorker(features.slice(), n, hyper);
}

function vaeKey(model: VaeModel, set: Labelled): KeyResult & { mu: Float32Array } {
  const score = scoreVae(model, set.features, set.n);
  const l = model.meta.latentDim;
  return {
    key: `vae-${l} (own set)`,
    dim: l,
    bytesPerImage: l * 4,
    ...scoreKeys(score.mu, set, l),
    activeUnits: score.activeUnits,
    meanKlPerDim: score.klPerDim.reduce((a, b) => a + b, 0) / l,
    mu: score.mu,
  };
}

async function transferCheck(all: Labelled, coarseNames: string[], options: EvalOptions): Promise<TransferResult[]> {
  const categories = seededShuffle([...new Set(all.coarse)], options.seed);
  if (categories.length < 2) return [];
  const halves = [categories.slice(0, categories.length >> 1), categories.slice(categories.length >> 1)];
  const rowsOf = (half: number[]) => Array.from({ length: all.n }, (_, i) => i).filter((i) => half.includes(all.coarse[i]));
  const sets = halves.map((half) => subset(all, rowsOf(half)));
  if (sets.some((s) => s.n < MIN_VAE_TRAINING_SIZE)) return [];
  const latent = options.hyper?.latent ?? 64;
  const models = [];
  for (const s of sets) models.push(await trainVae(s.features, s.n, options));
  const results: TransferResult[] = [];
  for (const [target, other] of [
    [0, 1],
    [1, 0],
  ]) {
    const set = sets[target];
    const pca = fitPca(sets[other].features, sets[other].n, set.dim, Math.min(latent, sets[other].n - 1), options.seed);
    results.push({
      evaluatedOn: halves[target].map((c) => coarseNames[c]),
      trainedOn: halves[other].map((c) => coarseNames[c]),
      images: set.n,
      raw: scoreKeys(set.features, set, set.dim),
      pcaOther: scoreKeys(projectPca(pca, set.features, set.n, false), set, pca.components),
      vaeOther: scoreKeys(models[other].encode(set.features, set.n), set, models[other].meta.latentDim),
      vaeOwn: scoreKeys(models[target].encode(set.features, set.n), set, models[target].meta.latentDim),
    });
    options.log?.(`transfer → ${results.at(-1)!.evaluatedOn.join(', ')}: done`);
  }
  return results;
}

export async function evaluateRelevance(dataset: Dataset, options: EvalOptions): Promise<EvalReport> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const { extractor, cacheDir, seed, fit } = options;
  // What the engine flattens transparency onto in every namespace it creates (src/index/namespace.ts).
  const background = options.background ?? 'white';
  const sources = dataset.images.map((image) => ({ path: image.path }));
  const progress = (what: string) => (done: number, total: number) => {
    if (done === total || done % 250 === 0) log(`${what}: ${done}/${total}`);
  };
  const originals = await extractWithCache(sources, { extractor, fit, background, cacheDir, onProgress: progress(`features (${fit})`) });
  const otherFit: Fit = fit === 'crop' ? 'pad' : 'crop';
  const other = await extractWithCache(sources, { extractor, fit: otherFit, background, cacheDir, onProgress: progress(`features (${otherFit})`) });

  const kept = dataset.images.map((_, i) => i).filter((i) => !originals.failures.has(i) && !other.failures.has(i));
  const failures = [...new Set([...originals.failures.keys(), ...other.failures.keys()])]
    .sort((a, b) => a - b)
    .map((i) => ({ path: dataset.images[i].path, reason: originals.failures.get(i) ?? other.failures.get(i)! }));
  const labelNames = kept.map((i) => dataset.images[i].label);
  const coarseNamesPerImage = kept.map((i) => dataset.images[i].coarse);
  const coarseNames = [...new Set(coarseNamesPerImage)];
  const dim = extractor.dim;
  const all: Labelled = {
    features: gather(originals.features, dim, kept),
    n: kept.length,
    dim,
    labels: labelIds(labelNames),
    coarse: Int32Array.from(coarseNamesPerImage, (c) => coarseNames.indexOf(c)),
  };
  const { n } = all;
  log(`${n} images, ${new Set(labelNames).size} labels, ${coarseNames.length} coarse labels, ${failures.length} failed`);

  const sampleSize = Math.min(n, options.quick ? 8 : 200);
  const sample = seededShuffle(Array.from({ length: n }, (_, i) => i), seed).slice(0, sampleSize);
  const querySources = sample.flatMap((row) => ROBUSTNESS_TRANSFORMS.map((transform) => ({ path: dataset.images[kept[row]].path, transform })));
  const edited = await extractWithCache(querySources, { extractor, fit, background, cacheDir, onProgress: progress('edited copies') });
  const robust: RobustnessSet = {
    transforms: querySources.map((s) => s.transform),
    targets: Int32Array.from(querySources, (_, q) => sample[Math.floor(q / ROBUSTNESS_TRANSFORMS.length)]),
    extracted: edited,
    rows: querySources.map((_, q) => q).filter((q) => !edited.failures.has(q)),
  };

  const keys: KeyResult[] = [];
  const identity = (features: Float32Array) => features;
  keys.push({ key: `raw-${dim}`, dim, bytesPerImage: dim * 4, ...scoreKeys(all.features, all, dim), robustness: cosineRobustnessOf(robust, identity, all.features, n, dim) });
  log('raw: done');

  const latent = Math.min(options.hyper?.latent ?? 64, n - 1);
  const pca = fitPca(all.features, n, dim, latent, seed);
  for (const whiten of [false, true]) {
    const encode = (features: Float32Array, count: number) => projectPca(pca, features, count, whiten);
    const db = encode(all.features, n);
    keys.push({
      key: `pca-${pca.components}${whiten ? ' whitened' : ''}`,
      dim: pca.components,
      bytesPerImage: pca.components * 4,
      ...scoreKeys(db, all, pca.components),
      robustness: cosineRobustnessOf(robust, encode, db, n, pca.components),
    });
  }
  log('pca: done');

  let own: VaeModel | null = null;
  const learningCurve: CurvePoint[] = [];
  let transfer: TransferResult[] = [];
  if (n >= MIN_VAE_TRAINING_SIZE) {
    own = await trainVae(all.features, n, options);
    const { mu, ...result } = vaeKey(own, all);
    const l = own.meta.latentDim;
    keys.push({ ...result, robustness: cosineRobustnessOf(robust, (f, c) => own!.encode(f, c), mu, n, l) });
    log(`vae: P@${K} ${result.precision.toFixed(3)}, ${result.activeUnits} active units`);

    const rawNeighbours = cosineNeighbours(all.features, n, dim, Math.min(K, n - 1));
    const point = (size: number, set: Labelled, model: VaeModel, neighbours: Int32Array, mu: Float32Array): CurvePoint => {
      const k = Math.min(K, set.n - 1);
      return {
        size,
        raw: scoreKeys(set.features, set, dim),
        vae: scoreKeys(mu, set, model.meta.latentDim),
        overlapWithRaw: neighbourOverlap(neighbours, cosineNeighbours(mu, set.n, model.meta.latentDim, k), set.n, k),
        activeUnits: model.meta.activeUnits,
      };
    };
    for (const size of LEARNING_CURVE_SIZES.filter((s) => s < n && s >= MIN_VAE_TRAINING_SIZE)) {
      const set = subset(all, seededShuffle(Array.from({ length: n }, (_, i) => i), seed + size).slice(0, size));
      const model = await trainVae(set.features, set.n, options);
      learningCurve.push(point(size, set, model, cosineNeighbours(set.features, set.n, dim, Math.min(K, set.n - 1)), model.encode(set.features, set.n)));
      log(`learning curve ${size}: raw ${learningCurve.at(-1)!.raw.precision.toFixed(3)}, vae ${learningCurve.at(-1)!.vae.precision.toFixed(3)}`);
    }
    learningCurve.push(point(n, all, own, rawNeighbours, mu));
    transfer = await transferCheck(all, coarseNames, options);
  }

  keys.push({
    key: 'dhash-64',
    dim: 64,
    bytesPerImage: 8,
    precision: NaN,
    map: NaN,
    coarsePrecision: NaN,
    robustness: dHashRobustness(robust, Uint32Array.from(kept.flatMap((i) => [originals.hashes[2 * i], originals.hashes[2 * i + 1]])), n),
  });

  return {
    images: n,
    failures,
    labels: new Set(labelNames).size,
    coarseLabels: coarseNames.length,
    seed,
    quick: options.quick,
    fit,
    keys,
    otherFit: { fit: otherFit, scores: scoreKeys(gather(other.features, dim, kept), all, dim) },
    robustnessQueries: robust.rows.length,
    transfer,
    learningCurve,
    vaeHyper: own?.meta.hyper ?? null,
    seconds: (performance.now() - started) / 1000,
  };
}
