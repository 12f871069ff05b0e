/**
 * Simulated askers giving relevance feedback, with the labels as the oracle: every image is a query; among the k
 * results shown the asker likes up to `perRound` relevant and dislikes up to `perRound` irrelevant ones not judged
 * before (picked at random with the seed), the query is moved by Rocchio (src/index/feedback.ts) with everything
 * judged so far, and the k results of the moved query are shown next. P@k is measured on what is shown, as the
 * asker sees it.
 */
import { unitRows } from '../index/quality-gate.js';
import { rocchio, ROCCHIO, type RocchioWeights } from '../index/feedback.js';
import { mulberry32 } from '../util/random.js';

export type FeedbackSimOptions = { k: number; rounds: number; perRound: number; seed: number; weights?: RocchioWeights };

/** The k rows most cosine-similar to `query` (unit), `self` excluded, best first. */
function topK(unit: Float32Array, n: number, d: number, query: Float32Array, self: number, k: number): number[] {
  const best: Array<{ j: number; s: number }> = [];
  for (let j = 0; j < n; j++) {
    if (j === self) continue;
    let s = 0;
    for (let t = 0; t < d; t++) s += unit[j * d + t] * query[t];
    if (best.length === k && s <= best[k - 1].s) continue;
    let p = best.length < k ? best.length : k - 1;
    best[p] = { j, s };
    while (p > 0 && best[p - 1].s < s) {
      [best[p - 1], best[p]] = [best[p], best[p - 1]];
      p--;
    }
  }
  return best.map((b) => b.j);
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
      const moved = rocchio(query, liked.map(row), disliked.map(row), options.weights ?? ROCCHIO);
      shown = topK(unit, n, d, moved, i, k);
    }
  }
  return precision.map((p) => p / n);
}
