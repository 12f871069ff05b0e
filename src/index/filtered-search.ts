import type { KeySpace } from './namespace.js';
import { firstAcceptedView } from './references.js';
import type { FeatureStore, ImageRecord } from './store.js';

export interface Hit {
  record: ImageRecord;
  /** Cosine similarity in the key space it was found in. */
  score: number;
  /** While a style trial runs: the key whose results this one was drafted from (a judgement on it counts for that key). */
  key?: string;
}

/**
 * The `k` nearest images to `key` that `filter` lets through (each seen through its first accepted reference),
 * leaving out `exclude` (the query itself). Asks the index for more candidates than needed, four times as many
 * each round, until the filter has let `k` through or the index is exhausted.
 */
export async function filteredSearch(
  store: FeatureStore,
  space: KeySpace,
  key: Float32Array,
  k: number,
  exclude: number | undefined,
  filter: ((record: ImageRecord) => boolean | Promise<boolean>) | undefined,
): Promise<Hit[]> {
  const hits: Hit[] = [];
  for (let want = k + 1; ; want *= 4) {
    const neighbours = space.search(key, want, exclude);
    const records = await store.getRecords(neighbours.map((n) => n.id));
    hits.length = 0;
    for (const n of neighbours) {
      const stored = records.get(n.id);
      const record = stored && filter ? await firstAcceptedView(stored, filter) : stored;
      if (!record) continue;
      hits.push({ record, score: n.score });
      if (hits.length === k) break;
    }
    if (hits.length >= k || neighbours.length < want || want >= space.size) return hits;
  }
}
