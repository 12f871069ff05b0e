import type { FeatureStore } from '../../src/index/store.js';
import { decodeFloat16 } from '../../src/util/float16.js';

/** Every stored row through `featurePages` (the path a retrain reads), as ids and one row-major matrix, in id order. */
export async function readFeaturePages(store: FeatureStore, dim: number): Promise<{ ids: number[]; features: Float32Array }> {
  const ids: number[] = [];
  const rows: Float32Array[] = [];
  for await (const page of store.featurePages(dim)) {
    ids.push(...page.ids);
    rows.push(decodeFloat16(page.f16.subarray(0, page.ids.length * dim * 2)));
  }
  const features = new Float32Array(ids.length * dim);
  let at = 0;
  for (const block of rows) {
    features.set(block, at);
    at += block.length;
  }
  return { ids, features };
}
