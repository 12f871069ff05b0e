import type { Namespace } from './namespace.js';
import { referenceViews, type ImageRecord } from './store.js';

/**
 * Cosine similarity of raw MobileNetV2 features from which two images count as the same picture (a repost), set by
 * `npm run repost-eval` on both development sets and two seeds (docs/relevance.md, "Repost notices"): the lowest
 * threshold that keeps 99 % of the links true reposts on all four runs. It finds only the lighter edits (a fifth to a
 * tenth of the edited copies); identical files always count. Raw features, not the index key: they separated copies
 * from distinct images better than the PCA-64 key, and they do not change when a retrain switches keys.
 */
export const REPOST_THRESHOLD = 0.99;
/**
 * Candidates read from the index before they are scored on raw features: under a retrained key the original of
 * every edited copy in the measurement was among its 64 nearest (docs/relevance.md).
 */
const CANDIDATES = 64;

export interface NearDuplicate {
  /** The image seen through one of its posts (references); an image posted several times gives several. */
  record: ImageRecord;
  /** Cosine similarity of raw features (1 for identical bytes). */
  score: number;
}

/** Cosine similarity; 0 when either vector is all zeros (a failed extraction). */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/**
 * The posts of stored images whose raw features are at least `threshold` similar to `features`, most similar first
 * (posts of one image oldest first), each accepted by `filter`, at most `limit`. The image `self` (the input when it
 * is stored) is included: its other posts are identical copies.
 */
export async function findNearDuplicates(
  ns: Namespace,
  features: Float32Array,
  options: { threshold: number; limit: number; self?: number; poster?: string; filter?: (view: ImageRecord) => boolean | Promise<boolean> },
): Promise<NearDuplicate[]> {
  const scored: Array<{ id: number; score: number }> = [];
  const space = ns.current();
  for (const neighbour of space.search(space.key(features, options.poster), CANDIDATES)) {
    if (neighbour.id === options.self) {
      scored.push({ id: neighbour.id, score: 1 });
      continue;
    }
    // Under the raw key the index's score is already the raw cosine; under a retrained one, score the stored features.
    let score = neighbour.score;
    if (ns.key.kind !== 'raw' || ns.key.style !== undefined) {
      const stored = await ns.store.get(neighbour.id);
      if (!stored) continue;
      score = cosine(features, stored.features);
    }
    if (score >= options.threshold) scored.push({ id: neighbour.id, score });
  }
  if (options.self !== undefined && !scored.some((s) => s.id === options.self)) scored.push({ id: options.self, score: 1 });
  scored.sort((a, b) => b.score - a.score);
  const records = await ns.store.getRecords(scored.map((s) => s.id));
  const out: NearDuplicate[] = [];
  for (const { id, score } of scored) {
    const record = records.get(id);
    if (!record) continue;
    for (const view of referenceViews(record)) {
      if (options.filter && !(await options.filter(view))) continue;
      out.push({ record: view, score: Math.min(1, score) });
      if (out.length >= options.limit) return out;
    }
  }
  return out;
}
