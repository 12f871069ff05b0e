/**
 * How a retrain divides a namespace's features between the quality gate's held-out slice and the VAE's training
 * rows. Both are copies: the training rows go to the training worker. A retrain reads them from the store's pages
 * (`splitFromPages`) and never holds the other rows; `splitForRetrain` picks the same rows from a matrix.
 */
import { decodeFloat16Into } from '../util/float16.js';
import type { FeaturePage } from './feature-blobs.js';
import { MIN_GATE_SAMPLE } from './quality-gate.js';

/** Bounds the gate's exact neighbour search, which is quadratic in the slice. */
const MAX_GATE_SAMPLE = 1000;
/**
 * At most this many images train a VAE. Training time grows with the rows per epoch while quality levelled off
 * long before (docs/relevance.md), so a large collection trains on an evenly spread sample; every image is still
 * encoded into the new index.
 */
const MAX_TRAINING_ROWS = 10_000;

export interface RetrainSplit {
  heldOut: Float32Array;
  heldCount: number;
  /** Rows of the input matrix that form the held-out slice, in its order. */
  heldRows: Int32Array;
  training: Float32Array;
  /** Rows of the input matrix that form the training sample, in its order. */
  trainingRows: Int32Array;
  trainingCount: number;
}

function gather(features: Float32Array, rows: ArrayLike<number>, dim: number): Float32Array {
  const out = new Float32Array(rows.length * dim);
  for (let t = 0; t < rows.length; t++) out.set(features.subarray(rows[t] * dim, (rows[t] + 1) * dim), t * dim);
  return out;
}

/** Which of `n` rows form the held-out slice and which the training sample, both in ascending order. */
function planSplit(n: number): { held: Int32Array; sampled: Int32Array } {
  // Every `stride`-th image, so that the held-out slice spreads over the collection's history.
  const heldCount = Math.min(MAX_GATE_SAMPLE, Math.max(MIN_GATE_SAMPLE, Math.round(n * 0.1)));
  const stride = Math.floor(n / heldCount);
  const held = new Int32Array(heldCount);
  const rest = new Int32Array(n - heldCount);
  for (let i = 0, h = 0, r = 0; i < n; i++) {
    if (h < heldCount && i % stride === 0) held[h++] = i;
    else rest[r++] = i;
  }
  const sampleStride = rest.length / MAX_TRAINING_ROWS;
  const sampled = rest.length <= MAX_TRAINING_ROWS ? rest : Int32Array.from({ length: MAX_TRAINING_ROWS }, (_, j) => rest[Math.floor(j * sampleStride)]);
  return { held, sampled };
}

/** `features` holds `n` rows of `dim`; the gate judges the candidate on images it never trained on. */
export function splitForRetrain(features: Float32Array, n: number, dim: number): RetrainSplit {
  const { held, sampled } = planSplit(n);
  return { heldOut: gather(features, held, dim), heldCount: held.length, heldRows: held, training: gather(features, sampled, dim), trainingRows: sampled, trainingCount: sampled.length };
}

/**
 * splitForRetrain over the rows of `pages` (the store's float16 pages, in id order), of which `n` were counted
 * before: only the chosen rows are decoded and kept, with their ids. Rows past the n-th (images added during the
 * scan) are left out; when fewer than n come (images removed meanwhile), the slices hold the rows that came.
 */
export async function splitFromPages(
  pages: AsyncIterable<FeaturePage>,
  n: number,
  dim: number,
): Promise<Omit<RetrainSplit, 'heldRows' | 'trainingRows'> & { heldIds: number[]; trainingIds: number[] }> {
  const { held, sampled } = planSplit(n);
  const heldOut = new Float32Array(held.length * dim);
  const training = new Float32Array(sampled.length * dim);
  const heldIds: number[] = [];
  const trainingIds: number[] = [];
  let h = 0;
  let t = 0;
  let row = 0;
  for await (const page of pages) {
    for (let i = 0; i < page.ids.length && row < n; i++, row++) {
      const bytes = page.f16.subarray(i * dim * 2, (i + 1) * dim * 2);
      if (h < held.length && held[h] === row) {
        decodeFloat16Into(bytes, dim, heldOut, h++ * dim);
        heldIds.push(page.ids[i]);
      } else if (t < sampled.length && sampled[t] === row) {
        decodeFloat16Into(bytes, dim, training, t++ * dim);
        trainingIds.push(page.ids[i]);
      }
    }
    if (row >= n) break;
  }
  return {
    heldOut: heldOut.subarray(0, h * dim),
    heldCount: h,
    heldIds,
    training: training.subarray(0, t * dim),
    trainingCount: t,
    trainingIds,
  };
}
