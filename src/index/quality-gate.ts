/**
 * The numeric pieces of the retrain quality check (key-signals.ts, key-choice.ts) and of the evaluation: cosine
 * neighbours, their overlap, and a VAE's held-out ELBO. Pure: no files, no workers, no engine.
 */
import { dot } from '../ml/linalg.js';
import { VaeModel, transformRow, unitRows } from '../ml/vae-model.js';

/** Held-out slices smaller than this make overlap@20 too noisy to decide on. */
export const MIN_GATE_SAMPLE = 50;

export { unitRows };

/**
 * Cosine similarity of every query row to every database row: queries × n values. `unitQueries` and
 * `unitDatabase` must come from unitRows.
 */
export function cosineSimilarities(unitQueries: Float32Array, queries: number, unitDatabase: Float32Array, n: number, d: number): Float32Array {
  const sims = new Float32Array(queries * n);
  for (let q = 0; q < queries; q++) for (let j = 0; j < n; j++) sims[q * n + j] = dot(unitQueries, q * d, unitDatabase, j * d, d);
  return sims;
}

/**
 * The indices of the `k` rows of `unit` (n × d, from unitRows) most cosine-similar to the unit vector at
 * `query[queryOffset…]`, best first, row `skip` left out, written into `into`; returns how many were found. Ties go
 * to the lower index, so results do not depend on floating-point accident in equal vectors.
 */
export function nearestRows(unit: Float32Array, n: number, d: number, query: Float32Array, queryOffset: number, skip: number, k: number, into: Int32Array): number {
  const topSim = new Float64Array(k);
  let filled = 0;
  for (let j = 0; j < n; j++) {
    if (j === skip) continue;
    const s = dot(unit, j * d, query, queryOffset, d);
    if (filled === k && s <= topSim[k - 1]) continue;
    let p = filled < k ? filled++ : k - 1;
    while (p > 0 && topSim[p - 1] < s) {
      topSim[p] = topSim[p - 1];
      into[p] = into[p - 1];
      p--;
    }
    topSim[p] = s;
    into[p] = j;
  }
  return filled;
}

/** For every row, the indices of its k most cosine-similar other rows, best first (n × k; see nearestRows). */
export function cosineNeighbours(vectors: Float32Array, n: number, d: number, k: number): Int32Array {
  const unit = unitRows(vectors, n, d);
  const kk = Math.min(k, n - 1);
  const out = new Int32Array(n * kk);
  for (let i = 0; i < n; i++) nearestRows(unit, n, d, unit, i * d, i, kk, out.subarray(i * kk, (i + 1) * kk));
  return out;
}

/** Mean |A_i ∩ B_i| / k over rows of two n × k neighbour lists. */
export function neighbourOverlap(a: Int32Array, b: Int32Array, n: number, k: number): number {
  let shared = 0;
  for (let i = 0; i < n; i++) {
    const mine = new Set(a.subarray(i * k, (i + 1) * k));
    for (let j = i * k; j < (i + 1) * k; j++) if (mine.has(b[j])) shared++;
  }
  return shared / (n * k);
}

export type VaeScore = {
  mu: Float32Array;
  /** Per image, averaged over the rows: ½‖x − decode(μ)‖² on the model's standardized inputs. */
  recon: number;
  /** KL(q(z|x) ‖ N(0, I)) per latent dimension, averaged over the rows. */
  klPerDim: Float64Array;
  /** Latent dimensions whose μ varies across the rows (variance > 0.01, Burda et al.). */
  activeUnits: number;
};

/** y = x·W + b for one row, W row-major [n][m]. */
function affine(x: Float64Array, w: Float32Array, b: Float32Array, n: number, m: number, y: Float64Array, relu: boolean): void {
  for (let j = 0; j < m; j++) y[j] = b[j];
  for (let k = 0; k < n; k++) {
    const v = x[k];
    if (v === 0) continue;
    const o = k * m;
    for (let j = 0; j < m; j++) y[j] += v * w[o + j];
  }
  if (relu) for (let j = 0; j < m; j++) if (y[j] < 0) y[j] = 0;
}

/**
 * The whole VAE (encoder, log-variance and decoder, which VaeModel.encode does not run) on `n` feature rows:
 * what training reports as the held-out loss, computed without tfjs.
 */
export function scoreVae(model: VaeModel, features: Float32Array, n: number): VaeScore {
  const { inputDim: d, hiddenDim: h, latentDim: l } = model.meta;
  const w = model.weights;
  const x = new Float64Array(d);
  const hidden = new Float64Array(h);
  const mu = new Float64Array(l);
  const logVar = new Float64Array(l);
  const xHat = new Float64Array(d);
  const mus = new Float32Array(n * l);
  const klPerDim = new Float64Array(l);
  let recon = 0;
  for (let i = 0; i < n; i++) {
    transformRow(model.meta.hyper.inputTransform, features, i * d, d, x, 0);
    for (let k = 0; k < d; k++) x[k] = (x[k] - w.inputMean[k]) / w.inputStd[k];
    affine(x, w.encoderW, w.encoderB, d, h, hidden, true);
    affine(hidden, w.muW, w.muB, h, l, mu, false);
    affine(hidden, w.logVarW, w.logVarB, h, l, logVar, false);
    affine(mu, w.decoderW, w.decoderB, l, h, hidden, true);
    affine(hidden, w.outputW, w.outputB, h, d, xHat, false);
    for (let k = 0; k < d; k++) recon += 0.5 * (x[k] - xHat[k]) ** 2;
    for (let j = 0; j < l; j++) {
      klPerDim[j] += 0.5 * (mu[j] * mu[j] + Math.exp(logVar[j]) - 1 - logVar[j]);
      mus[i * l + j] = mu[j];
    }
  }
  for (let j = 0; j < l; j++) klPerDim[j] /= n;
  return { mu: mus, recon: recon / n, klPerDim, activeUnits: countActiveUnits(mus, n, l) };
}

export function countActiveUnits(mu: Float32Array, n: number, l: number): number {
  let active = 0;
  for (let j = 0; j < l; j++) {
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < n; i++) {
      sum += mu[i * l + j];
      sumSq += mu[i * l + j] ** 2;
    }
    if (sumSq / n - (sum / n) ** 2 > 0.01) active++;
  }
  return active;
}
