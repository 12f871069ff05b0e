/**
 * Simulated askers giving relevance feedback, with the labels as the oracle: every image is a query; among the k
 * results shown the asker likes up to `perRound` relevant and dislikes up to `perRound` irrelevant ones not judged
 * before (picked at random with the seed), the query is moved by Rocchio (src/index/feedback.ts) with everything
 * judged so far, and the k results of the moved query are shown next. P@k is measured on what is shown, as the
 * asker sees it.
 */
import { nearestRows } from '../index/quality-gate.js';
import { unitRows } from '../ml/vae-model.js';
import { rocchio, ROCCHIO, type RocchioWeights } from '../index/feedback.js';
import { mulberry32 } from '../util/random.js';

/** `centred` (default true): Rocchio measured from the mean of the keys, as the engine does (feedback.ts). */
export type FeedbackSimOptions = { k: number; rounds: number; perRound: number; seed: number; weights?: RocchioWeights; centred?: boolean };

/** The mean of n unit rows. */
function meanRow(unit: Float32Array, n: number, d: number): Float32Array {
  const sum = new Float64Array(d);
  for (let i = 0; i < n * d; i++) sum[i % d] += unit[i];
  return Float32Array.from(sum, (v) => v / Math.max(1, n));
}

/** The k rows most cosine-similar to `query` (unit), `self` excluded, best first. */
function topK(unit: Float32Array, n: number, d: number, query: Float32Array, self: number, k: number): number[] {
  const into = new Int32Array(k);
  return Array.from(into.subarray(0, nearestRows(unit, n, d, query, 0, self, k, into)));
}

function pickUpTo(rows: number[], count: number, rand: () => number): number[] {
  const pool = [...rows];
  const out: number[] = [];
  while (out.length < count && pool.length > 0) out.push(pool.splice(Math.floor(rand() * pool.length), 1)[0]);
  return out;
}

/** Mean P@k after 0, 1, …, rounds rounds of feedback (index 0: no feedback). */
export function simulateFeedback(keys: Float32Array, n: number, d: number, labels: Int32Array, options: FeedbackSimOptions): number[] {
  const { k, rounds, perRound } = options;
  const unit = unitRows(keys, n, d);
  const rand = mulberry32(options.seed);
  const centre = options.centred === false ? undefined : meanRow(unit, n, d);
  const precision = new Array<number>(rounds + 1).fill(0);
  for (let i = 0; i < n; i++) {
    const query = unit.subarray(i * d, (i + 1) * d);
    const liked: number[] = [];
    const disliked: number[] = [];
    let shown = topK(unit, n, d, query, i, k);
    for (let round = 0; ; round++) {
      precision[round] += shown.filter((j) => labels[j] === labels[i]).length / k;
      if (round === rounds) break;
      const judged = new Set([...liked, ...disliked]);
      const open = shown.filter((j) => !judged.has(j));
      liked.push(...pickUpTo(open.filter((j) => labels[j] === labels[i]), perRound, rand));
      disliked.push(...pickUpTo(open.filter((j) => labels[j] !== labels[i]), perRound, rand));
      const row = (j: number) => unit.subarray(j * d, (j + 1) * d);
      const moved = rocchio(query, liked.map(row), disliked.map(row), options.weights ?? ROCCHIO, centre);
      shown = topK(unit, n, d, moved, i, k);
    }
  }
  return precision.map((p) => p / n);
}
