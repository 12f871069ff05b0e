/**
 * PCA of feature vectors, the linear baseline a VAE of the same size has to beat. Fitted on unit-length rows
 * (what cosine on raw features compares) by subspace iteration on the covariance: only the leading
 * components are needed, and a full 1280×1280 eigendecomposition in JS would cost far more.
 */
import { mulberry32 } from '../util/random.js';
import { unitRows } from './vae-model.js';

export type Pca = {
  dim: number;
  components: number;
  mean: Float64Array;
  /** components × dim, row r the r-th principal axis (unit length), by decreasing variance. */
  axes: Float64Array;
  /** Variance along each axis. */
  variances: Float64Array;
};

/** Rounds of multiplying by the covariance: enough for the leading 64 axes to settle on 1,500 CNN feature vectors. */
const ITERATIONS = 24;
/** Extra axes iterated alongside, which makes the wanted ones converge faster. */
const OVERSAMPLE = 16;

/** Modified Gram–Schmidt on p row vectors of length d, in place. */
function orthonormalize(q: Float64Array, p: number, d: number): void {
  for (let a = 0; a < p; a++) {
    for (let b = 0; b < a; b++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += q[a * d + k] * q[b * d + k];
      for (let k = 0; k < d; k++) q[a * d + k] -= s * q[b * d + k];
    }
    let norm = 0;
    for (let k = 0; k < d; k++) norm += q[a * d + k] ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let k = 0; k < d; k++) q[a * d + k] /= norm;
  }
}

/** out (p × d) = rows of q (p × d) times the symmetric d × d matrix c. */
function multiplyByMatrix(c: Float64Array, q: Float64Array, p: number, d: number, out: Float64Array): void {
  out.fill(0);
  for (let a = 0; a < p; a++) {
    for (let k = 0; k < d; k++) {
      const v = q[a * d + k];
      const o = k * d;
      for (let j = 0; j < d; j++) out[a * d + j] += v * c[o + j];
    }
  }
}

/** out = rows of q times (XᵀX)/n for n centred rows X (n × d), without forming the d × d product. */
function multiplyByRows(x: Float64Array, n: number, q: Float64Array, p: number, d: number, out: Float64Array): void {
  out.fill(0);
  for (let a = 0; a < p; a++) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += x[i * d + k] * q[a * d + k];
      s /= n;
      for (let k = 0; k < d; k++) out[a * d + k] += s * x[i * d + k];
    }
  }
}

type CovarianceProduct = (q: Float64Array, p: number, out: Float64Array) => void;

/**
 * Multiplication by the covariance of the centred rows. Forming the d × d matrix costs n·d²/2 once and d²
 * per axis per round; going through the rows costs 2·n·d per axis per round, which is cheaper for small sets.
 */
function covarianceProduct(centred: Float64Array, n: number, d: number, axes: number): CovarianceProduct {
  if (2 * n * (ITERATIONS + 1) * axes < n * d / 2 + d * (ITERATIONS + 1) * axes) {
    return (q, p, out) => multiplyByRows(centred, n, q, p, d, out);
  }
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < d; a++) {
      const v = centred[i * d + a] / n;
      if (v === 0) continue;
      const o = a * d;
      for (let b = a; b < d; b++) cov[o + b] += v * centred[i * d + b];
    }
  }
  for (let a = 0; a < d; a++) for (let b = 0; b < a; b++) cov[a * d + b] = cov[b * d + a];
  return (q, p, out) => multiplyByMatrix(cov, q, p, d, out);
}

/** Eigenvalues and eigenvectors (columns of the returned p × p matrix) of a small symmetric matrix, by cyclic Jacobi. */
export function jacobiEigen(matrix: Float64Array, p: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(p * p);
  for (let i = 0; i < p; i++) v[i * p + i] = 1;
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let i = 0; i < p; i++) for (let j = i + 1; j < p; j++) off += a[i * p + j] ** 2;
    if (off < 1e-22) break;
    for (let i = 0; i < p; i++) {
      for (let j = i + 1; j < p; j++) {
        const aij = a[i * p + j];
        if (Math.abs(aij) < 1e-300) continue;
        const theta = (a[j * p + j] - a[i * p + i]) / (2 * aij);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < p; k++) {
          const aki = a[k * p + i];
          const akj = a[k * p + j];
          a[k * p + i] = c * aki - s * akj;
          a[k * p + j] = s * aki + c * akj;
        }
        for (let k = 0; k < p; k++) {
          const aik = a[i * p + k];
          const ajk = a[j * p + k];
          a[i * p + k] = c * aik - s * ajk;
          a[j * p + k] = s * aik + c * ajk;
        }
        for (let k = 0; k < p; k++) {
          const vki = v[k * p + i];
          const vkj = v[k * p + j];
          v[k * p + i] = c * vki - s * vkj;
          v[k * p + j] = s * vki + c * vkj;
        }
      }
    }
  }
  return { values: Float64Array.from({ length: p }, (_, i) => a[i * p + i]), vectors: v };
}

export function fitPca(features: Float32Array, n: number, dim: number, components: number, seed = 1): Pca {
  return fitPcaOfRows(unitRows(features, n, dim), n, dim, components, seed);
}

/** fitPca on rows taken as they are (not made unit length): the learned whitening's whitened rows. */
export function fitPcaOfRows(x: Float32Array | Float64Array, n: number, dim: number, components: number, seed = 1): Pca {
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) mean[k] += x[i * dim + k] / n;
  const centred = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) centred[i * dim + k] = x[i * dim + k] - mean[k];
  const p = Math.min(dim, components + OVERSAMPLE);
  const multiply = covarianceProduct(centred, n, dim, p);
  const random = mulberry32(seed);
  let q = Float64Array.from({ length: p * dim }, () => random() - 0.5);
  let next = new Float64Array(p * dim);
  orthonormalize(q, p, dim);
  for (let t = 0; t < ITERATIONS; t++) {
    multiply(q, p, next);
    [q, next] = [next, q];
    orthonormalize(q, p, dim);
  }
  // Rayleigh–Ritz: the best axes within the converged subspace, and their variances.
  multiply(q, p, next);
  const small = new Float64Array(p * p);
  for (let a = 0; a < p; a++) {
    for (let b = 0; b < p; b++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += q[a * dim + k] * next[b * dim + k];
      small[a * p + b] = s;
    }
  }
  const { values, vectors } = jacobiEigen(small, p);
  const order = Array.from({ length: p }, (_, i) => i).sort((a, b) => values[b] - values[a]);
  const count = Math.min(components, p);
  const axes = new Float64Array(count * dim);
  const variances = new Float64Array(count);
  for (let r = 0; r < count; r++) {
    const col = order[r];
    variances[r] = values[col];
    for (let a = 0; a < p; a++) {
      const w = vectors[a * p + col];
      for (let k = 0; k < dim; k++) axes[r * dim + k] += w * q[a * dim + k];
    }
  }
  return { dim, components: count, mean, axes, variances };
}

/** Coordinates along the axes (count × components); whitened divides each by its standard deviation. */
export function projectPca(pca: Pca, features: Float32Array, count: number, whiten: boolean): Float32Array {
  const { dim, components, mean, axes, variances } = pca;
  const x = unitRows(features, count, dim);
  const out = new Float32Array(count * components);
  for (let i = 0; i < count; i++) {
    for (let r = 0; r < components; r++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += (x[i * dim + k] - mean[k]) * axes[r * dim + k];
      out[i * components + r] = whiten ? s / Math.sqrt(Math.max(variances[r], 1e-12)) : s;
    }
  }
  return out;
}
