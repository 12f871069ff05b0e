export const FEATURE_DIM = 1280;

/**
 * `n` rows of non-negative, unevenly scaled values like pooled CNN features: realistic in scale for a VAE, distinct
 * enough that each row is its own nearest neighbour. Deterministic per seed.
 */
export function syntheticFeatures(n: number, seed: number): Float32Array {
  let state = seed;
  const next = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  return Float32Array.from({ length: n * FEATURE_DIM }, () => Math.max(0, next() * 6 - 3) * next());
}
