/**
 * How a retrain divides a namespace's features between the quality gate's held-out slice and the VAE's training
 * rows. Both are copies: the training rows go to the training worker, the matrix stays for the encode.
 */
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
  trainingCount: number;
}

function gather(features: Float32Array, rows: ArrayLike<number>, dim: number): Float32Array {
  const out = new Float32Array(rows.length * dim);
  for (let t = 0; t < rows.length; t++) out.set(features.subarray(rows[t] * dim, (rows[t] + 1) * dim), t * dim);
  return out;
}

/** `features` holds `n` rows of `dim`; the gate judges the candidate on images it never trained on. */
export function splitForRetrain(features: Float32Array, n: number, dim: number): RetrainSplit {
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
  return { heldOut: gather(features, held, dim), heldCount, heldRows: held, training: gather(features, sampled, dim), trainingCount: sampled.length };
}
