// Vectors with the structure of real collections. Uniform or independent Gaussian vectors have no near neighbours
// worth the name, so HNSW recall and VAE training time on them say nothing about an art server's history.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { createFeatureExtractor } from '../../src/ml/features.js';
import { preprocessImage } from '../../src/ml/image.js';
import { findPackageRoot } from '../../src/ml/onnx-model.js';
import { cachedJson, cachePath, createRandom, type BenchContext } from './common.js';

export const FEATURE_DIM = 1280;
export const LATENT_DIM = 64;
/** VAEs trained here leave about half of their 64 latent units active; the rest sit near the prior's mean. */
const ACTIVE_UNITS = 36;
const LATENT_CLUSTERS = 2_000;
const LATENT_SEED = 11;

export const REFERENCE_PHOTOS = join(findPackageRoot(), 'test', 'fixtures', 'reference');

export async function referencePhotos(): Promise<Buffer[]> {
  const names = (await readdir(REFERENCE_PHOTOS)).filter((n) => /\.(png|jpg)$/.test(n)).sort();
  return Promise.all(names.map((n) => readFile(join(REFERENCE_PHOTOS, n))));
}

/**
 * Real MobileNetV2 features of the reference photos and of crops, flips and tints of them: the centres that
 * synthetic collections are drawn around.
 */
export async function baseFeatures(ctx: BenchContext): Promise<Float32Array[]> {
  const rows = await cachedJson(cachePath(ctx, 'base-features.json'), async () => {
    const extractor = await createFeatureExtractor();
    try {
      const inputs: Promise<Float32Array>[] = [];
      for (const photo of await referencePhotos()) {
        const { width = 224, height = 224 } = await sharp(photo).metadata();
        for (let v = 0; v < (ctx.quick ? 1 : 6); v++) {
          const scale = 1 - 0.08 * v;
          const w = Math.round(width * scale);
          const h = Math.round(height * scale);
          let image = sharp(photo).extract({ left: Math.round((width - w) * (v % 3) / 2), top: Math.round((height - h) / 2), width: w, height: h });
          if (v % 2) image = image.flop();
          const bytes = await image.modulate({ brightness: 0.9 + 0.05 * v, hue: 15 * v }).png().toBuffer();
          inputs.push(preprocessImage(bytes).then((p) => extractor.extract(p.input)));
        }
      }
      return (await Promise.all(inputs)).map((f) => Array.from(f));
    } finally {
      await extractor.close();
    }
  });
  return rows.map((r) => Float32Array.from(r));
}

/**
 * `n` non-negative 1280-d vectors, each a blend of two real feature vectors with per-dimension multiplicative
 * noise: sparse and clustered like MobileNetV2's ReLU6 outputs, with the real vectors' norms.
 */
export function syntheticFeatures(base: Float32Array[], n: number, seed: number): Float32Array {
  const random = createRandom(seed);
  const out = new Float32Array(n * FEATURE_DIM);
  for (let i = 0; i < n; i++) {
    const a = base[random.int(base.length)];
    const b = base[random.int(base.length)];
    const w = 0.65 + 0.35 * random.next();
    const row = out.subarray(i * FEATURE_DIM, (i + 1) * FEATURE_DIM);
    for (let k = 0; k < FEATURE_DIM; k++) {
      const noise = random.next() + random.next() - 1;
      row[k] = Math.max(0, (w * a[k] + (1 - w) * b[k]) * (1 + 0.5 * noise) + 0.05 * noise);
    }
  }
  return out;
}

/**
 * `n` 64-d VAE-like latents: clusters of uneven popularity (a few themes dominate a server), a few active units
 * carrying the structure, and one vector in ten a near-duplicate of an earlier one (reposts).
 * `seed` picks the points; the clusters are the same for every seed, so held-out queries share them.
 */
export function clusteredLatents(n: number, seed: number): Float32Array {
  const centres = createRandom(LATENT_SEED);
  const centre = new Float32Array(LATENT_CLUSTERS * LATENT_DIM);
  for (let i = 0; i < centre.length; i++) centre[i] = centres.gauss() * (i % LATENT_DIM < ACTIVE_UNITS ? 1 : 0.1);
  const random = createRandom(seed);
  const out = new Float32Array(n * LATENT_DIM);
  for (let i = 0; i < n; i++) {
    const row = out.subarray(i * LATENT_DIM, (i + 1) * LATENT_DIM);
    if (i > 0 && random.next() < 0.1) {
      const j = random.int(i);
      for (let k = 0; k < LATENT_DIM; k++) row[k] = out[j * LATENT_DIM + k] + 0.03 * random.gauss();
      continue;
    }
    const c = Math.floor(LATENT_CLUSTERS * random.next() ** 2) * LATENT_DIM;
    const spread = 0.25 + 0.35 * random.next();
    for (let k = 0; k < LATENT_DIM; k++) row[k] = centre[c + k] + spread * random.gauss() * (k < ACTIVE_UNITS ? 1 : 0.2);
  }
  return out;
}

/** The exact `k` nearest rows of `data` by cosine for every query row: the ground truth for recall. */
export function exactNeighbours(data: Float32Array, queries: Float32Array, dim: number, k: number): number[][] {
  const unit = normalizedRows(data, dim);
  const q = normalizedRows(queries, dim);
  const n = data.length / dim;
  const answers: number[][] = [];
  for (let qi = 0; qi < q.length / dim; qi++) {
    const query = q.subarray(qi * dim, (qi + 1) * dim);
    const bestIds: number[] = [];
    const bestScores: number[] = [];
    let floor = -Infinity;
    for (let i = 0; i < n; i++) {
      let dot = 0;
      const o = i * dim;
      for (let d = 0; d < dim; d++) dot += query[d] * unit[o + d];
      if (bestIds.length === k && dot <= floor) continue;
      let at = bestScores.findIndex((s) => dot > s);
      if (at < 0) at = bestScores.length;
      bestScores.splice(at, 0, dot);
      bestIds.splice(at, 0, i);
      if (bestIds.length > k) {
        bestIds.pop();
        bestScores.pop();
      }
      if (bestIds.length === k) floor = bestScores[k - 1];
    }
    answers.push(bestIds);
  }
  return answers;
}

function normalizedRows(data: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let o = 0; o < data.length; o += dim) {
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += data[o + d] ** 2;
    const scale = 1 / Math.sqrt(norm || 1);
    for (let d = 0; d < dim; d++) out[o + d] = data[o + d] * scale;
  }
  return out;
}
