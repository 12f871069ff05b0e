/**
 * Learned whitening (Radenović et al.) without labels: the matching pairs are a stored image and an edited copy of
 * it. The pairs' difference covariance C, shrunk to C + λ·tr(C)/D·I, whitens the centred rows through its Cholesky
 * factor (the same key as C^(−1/2) up to a rotation, at a fraction of an eigendecomposition's cost in JS), and the
 * key is the top principal axes of the whitened rows: one linear map, y = Vᵀ·L⁻¹·(x − μ).
 */
import { fitPcaOfRows } from './pca.js';
import { unitRows } from './vae-model.js';

/** Pairs for the fit: row p of `original` (an image's features) against row p of `edited` (its edited copy's), count × dim. */
export type EditPairs = { original: Float32Array; edited: Float32Array; count: number };

export type LearnedWhiteningOptions = { components: number; lambda: number; seed: number };

export type LinearMap = { mean: Float64Array; components: number; /** dim × components, [k][r] */ map: Float64Array };

/** Pairs accumulated together: each covariance entry read from memory serves four rank-one updates. */
const BLOCK = 4;

/** Upper triangle (then mirrored) of Σ dᵢdᵢᵀ / m over the pairs' differences of unit rows. */
function differenceCovariance(pairs: EditPairs, dim: number): Float64Array {
  const original = unitRows(pairs.original, pairs.count, dim);
  const edited = unitRows(pairs.edited, pairs.count, dim);
  const cov = new Float64Array(dim * dim);
  const diff = new Float64Array(BLOCK * dim);
  for (let p0 = 0; p0 < pairs.count; p0 += BLOCK) {
    const rows = Math.min(BLOCK, pairs.count - p0);
    diff.fill(0);
    for (let t = 0; t < rows; t++) {
      const o = (p0 + t) * dim;
      for (let k = 0; k < dim; k++) diff[t * dim + k] = original[o + k] - edited[o + k];
    }
    for (let a = 0; a < dim; a++) {
      const v0 = diff[a];
      const v1 = diff[dim + a];
      const v2 = diff[2 * dim + a];
      const v3 = diff[3 * dim + a];
      const o = a * dim;
      for (let b = a; b < dim; b++) cov[o + b] += v0 * diff[b] + v1 * diff[dim + b] + v2 * diff[2 * dim + b] + v3 * diff[3 * dim + b];
    }
  }
  for (let a = 0; a < dim; a++) {
    for (let b = a; b < dim; b++) {
      cov[a * dim + b] /= pairs.count;
      cov[b * dim + a] = cov[a * dim + b];
    }
  }
  return cov;
}

/** Lower-triangular L with L·Lᵀ = a (symmetric positive definite), in place of a's lower triangle. */
export function cholesky(a: Float64Array, d: number): Float64Array {
  for (let j = 0; j < d; j++) {
    for (let i = j; i < d; i++) {
      let s = a[i * d + j];
      for (let k = 0; k < j; k++) s -= a[i * d + k] * a[j * d + k];
      if (i === j) {
        if (!(s > 0)) throw new RangeError('cholesky: the matrix is not positive definite');
        a[j * d + j] = Math.sqrt(s);
      } else {
        a[i * d + j] = s / a[j * d + j];
      }
    }
  }
  for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) a[i * d + j] = 0;
  return a;
}

/**
 * Fits the map on `n` rows of `features` (row-major, n × dim; made unit length, as the index's raw cosine sees them:
 * they give the mean and the principal axes) and the edit pairs (the whitening). Shrinkage λ keeps directions the edits never moved from being blown up by 1/√(tiny variance).
 */
export function fitLearnedWhitening(features: Float32Array, n: number, dim: number, pairs: EditPairs, options: LearnedWhiteningOptions): LinearMap {
  if (pairs.count < 1) throw new RangeError('learned whitening needs at least one edit pair');
  const x = unitRows(features, n, dim);
  const cov = differenceCovariance(pairs, dim);
  let trace = 0;
  for (let k = 0; k < dim; k++) trace += cov[k * dim + k];
  // An all-zero covariance (every copy identical to its original) still gets a positive ridge: the key is then PCA.
  const ridge = options.lambda * Math.max(trace / dim, 1e-12);
  for (let k = 0; k < dim; k++) cov[k * dim + k] += ridge;
  const l = cholesky(cov, dim);
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) mean[k] += x[i * dim + k] / n;
  // Whitened rows z = L⁻¹(x − μ), by forward substitution.
  const z = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    for (let k = 0; k < dim; k++) {
      let s = x[o + k] - mean[k];
      const lk = k * dim;
      for (let j = 0; j < k; j++) s -= l[lk + j] * z[o + j];
      z[o + k] = s / l[lk + k];
    }
  }
  const pca = fitPcaOfRows(z, n, dim, Math.min(options.components, n - 1), options.seed);
  // y_r = v_rᵀ·L⁻¹·(x − μ) = (L⁻ᵀ·v_r)ᵀ·(x − μ): column r of the map solves Lᵀ·a = v_r (back substitution).
  const components = pca.components;
  const map = new Float64Array(dim * components);
  const a = new Float64Array(dim);
  for (let r = 0; r < components; r++) {
    for (let k = dim - 1; k >= 0; k--) {
      let s = pca.axes[r * dim + k];
      for (let j = k + 1; j < dim; j++) s -= l[j * dim + k] * a[j];
      a[k] = s / l[k * dim + k];
    }
    for (let k = 0; k < dim; k++) map[k * components + r] = a[k];
  }
  return { mean, components, map };
}
