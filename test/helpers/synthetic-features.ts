import { mulberry32 } from '../../src/util/random.js';

export const FEATURE_DIM = 1280;

/**
 * `n` rows of non-negative, unevenly scaled values like pooled CNN features: realistic in scale for a VAE, distinct
 * enough that each row is its own nearest neighbour. Deterministic per seed.
 */
export function syntheticFeatures(n: number, seed: number): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n * FEATURE_DIM }, () => Math.max(0, next() * 6 - 3) * next());
}
