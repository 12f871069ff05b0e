/** Leave-one-out retrieval and robustness measures over index keys. */
import { cosineNeighbours, cosineSimilarities, unitRows } from '../index/quality-gate.js';

export type RetrievalScores = {
  /** Mean share of the k nearest other images that carry the query's label. */
  precision: number;
  /** Mean AP@k: Σ P@i over the hits in the first k, divided by min(k, images sharing the label). */
  map: number;
  /** precision with the coarse label. */
  coarsePrecision: number;
};

/** Labels as small integers, so the inner loops compare numbers. */
export function labelIds(labels: readonly string[]): Int32Array {
  const ids = new Map<string, number>();
  return Int32Array.from(labels, (label) => {
    if (!ids.has(label)) ids.set(label, ids.size);
    return ids.get(label)!;
  });
}

/** `neighbours` is n × k (from cosineNeighbours): every image a query against all the others. */
export function scoreNeighbours(neighbours: Int32Array, n: number, k: number, labels: Int32Array, coarse: Int32Array): RetrievalScores {
  const classSize = new Map<number, number>();
  for (const l of labels) classSize.set(l, (classSize.get(l) ?? 0) + 1);
  let precision = 0;
  let map = 0;
  let coarsePrecision = 0;
  for (let i = 0; i < n; i++) {
    const relevant = classSize.get(labels[i])! - 1;
    let hits = 0;
    let ap = 0;
    for (let r = 0; r < k; r++) {
      const j = neighbours[i * k + r];
      if (labels[j] === labels[i]) {
        hits++;
        ap += hits / (r + 1);
      }
      if (coarse[j] === coarse[i]) coarsePrecision++;
    }
    precision += hits / k;
    if (relevant > 0) map += ap / Math.min(k, relevant);
  }
  return { precision: precision / n, map: map / n, coarsePrecision: coarsePrecision / (n * k) };
}

export function retrievalScores(keys: Float32Array, n: number, dim: number, k: number, labels: Int32Array, coarse: Int32Array): RetrievalScores {
  return scoreNeighbours(cosineNeighbours(keys, n, dim, k), n, k, labels, coarse);
}

export type RobustnessScores = { recallAt1: number; meanRank: number };

/**
 * Each query is an edited copy of database row `targets[q]`; its rank is 1 + the number of database rows
 * strictly more similar than that original (ties count in the original's favour).
 */
export function rankOfOriginals(similarities: Float32Array | Float64Array, queries: number, n: number, targets: Int32Array): RobustnessScores {
  let first = 0;
  let rankSum = 0;
  for (let q = 0; q < queries; q++) {
    const own = similarities[q * n + targets[q]];
    let rank = 1;
    for (let j = 0; j < n; j++) if (similarities[q * n + j] > own) rank++;
    if (rank === 1) first++;
    rankSum += rank;
  }
  return { recallAt1: first / queries, meanRank: rankSum / queries };
}

export function cosineRobustness(queryKeys: Float32Array, queries: number, dbKeys: Float32Array, n: number, dim: number, targets: Int32Array): RobustnessScores {
  const sims = cosineSimilarities(unitRows(queryKeys, queries, dim), queries, unitRows(dbKeys, n, dim), n, dim);
  return rankOfOriginals(sims, queries, n, targets);
}
