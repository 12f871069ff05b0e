/**
 * Plain-JS dense kernels shared by the exact searches (src/index/flat-vectors.ts, src/index/quality-gate.ts) and the
 * VAE's pure-JS encoder (vae-model.ts). No tfjs here: answering a query must not load it.
 *
 * The summation order is part of each kernel's contract: saved models, gate decisions and evaluation figures are
 * compared bit for bit across versions, so a change of order (even a faster one) changes results.
 */

/**
 * Σk a[ao + k]·b[bo + k] for k < d. Four partial sums over k ≡ 0, 1, 2, 3 (mod 4) shorten the floating-point
 * dependency chain (~1.5× faster than one sum in V8); the d mod 4 tail goes into the first; the result is
 * s0 + s1 + s2 + s3 in that order.
 */
export function dot(a: Float32Array | Float64Array, ao: number, b: Float32Array, bo: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const d4 = d - (d % 4);
  for (let k = 0; k < d4; k += 4) {
    s0 += a[ao + k] * b[bo + k];
    s1 += a[ao + k + 1] * b[bo + k + 1];
    s2 += a[ao + k + 2] * b[bo + k + 2];
    s3 += a[ao + k + 3] * b[bo + k + 3];
  }
  for (let k = d4; k < d; k++) s0 += a[ao + k] * b[bo + k];
  return s0 + s1 + s2 + s3;
}

/** Rows that `dense` multiplies together so that each weight read from memory serves several vectors. */
export const ROW_BLOCK = 4;

/** [rows][cols] → [cols][rows]. */
export function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
  return t;
}

/**
 * out[r][j] = b[j] + Σk x[r][k]·wt[j][k] for `rows` (≤ ROW_BLOCK) rows of width n; `wt` is [m][n], so each output is
 * a dot product over a contiguous weight row. A full block sums each row in one chain (dense4), a partial one with
 * `dot`'s four partial sums: the two orders differ in the last bits, and both are kept as they are.
 */
export function dense(x: Float64Array, rows: number, wt: Float32Array, b: Float32Array, n: number, m: number, out: Float64Array): void {
  if (rows === ROW_BLOCK) {
    dense4(x, wt, b, n, m, out);
    return;
  }
  for (let r = 0; r < rows; r++) {
    const xo = r * n;
    const o = r * m;
    for (let j = 0; j < m; j++) out[o + j] = b[j] + dot(x, xo, wt, j * n, n);
  }
}

/** Four rows: each weight is loaded once for four multiply-adds (~0.3 ms per 1280→512 row against ~0.5). */
function dense4(x: Float64Array, wt: Float32Array, b: Float32Array, n: number, m: number, out: Float64Array): void {
  for (let j = 0; j < m; j++) {
    const wo = j * n;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let k = 0; k < n; k++) {
      const w = wt[wo + k];
      s0 += x[k] * w;
      s1 += x[n + k] * w;
      s2 += x[2 * n + k] * w;
      s3 += x[3 * n + k] * w;
    }
    out[j] = b[j] + s0;
    out[m + j] = b[j] + s1;
    out[2 * m + j] = b[j] + s2;
    out[3 * m + j] = b[j] + s3;
  }
}
