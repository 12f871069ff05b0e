/**
 * Askers who judge answers with the labels as the oracle, through the engine: each asks about a stored image (drawn
 * with the seed), likes up to two relevant and dislikes up to two irrelevant results among the k shown, and the
 * engine counts each judgement (`Engine.judge`), as the bot's 👍/👎 do. Used to run a style trial to its decision.
 */
import type { Engine } from '../index/engine.js';
import type { TrialDecision } from '../index/style-trial.js';
import { mulberry32 } from '../util/random.js';

export interface AskersResult {
  /** `no trial`: none was running (or it ended some other way) when asked. */
  decision: TrialDecision | 'no trial';
  /** Answers asked until the trial was decided (or the budget ran out). */
  answers: number;
}

export async function askUntilDecided(
  engine: Engine,
  ids: readonly number[],
  labelOf: (id: number) => string,
  options: { namespace?: string; seed: number; k: number; maxAnswers: number; askers?: number },
): Promise<AskersResult> {
  const random = mulberry32(options.seed * 104_729 + 3);
  const pick = <T>(items: T[], count: number): T[] => {
    const pool = [...items];
    const out: T[] = [];
    while (out.length < count && pool.length > 0) out.push(pool.splice(Math.floor(random() * pool.length), 1)[0]);
    return out;
  };
  for (let answer = 1; answer <= options.maxAnswers; answer++) {
    const query = ids[Math.floor(random() * ids.length)];
    const asker = `asker${answer % (options.askers ?? 50)}`;
    const { hits, key } = await engine.query({ id: query }, { namespace: options.namespace, k: options.k, random });
    const relevant = hits.filter((hit) => labelOf(hit.record.id) === labelOf(query));
    const irrelevant = hits.filter((hit) => labelOf(hit.record.id) !== labelOf(query));
    const judgements = [...pick(relevant, 2).map((hit) => ({ hit, sign: 1 as const })), ...pick(irrelevant, 2).map((hit) => ({ hit, sign: -1 as const }))];
    for (const { hit, sign } of judgements) {
      const { trial } = await engine.judge({ asker, query: { id: query }, result: hit.record.id, sign, key: hit.key ?? key }, { namespace: options.namespace });
      if (trial === 'adopt' || trial === 'refuse') return { decision: trial, answers: answer };
      if (trial === undefined) return { decision: 'no trial', answers: answer };
    }
  }
  return { decision: 'running', answers: options.maxAnswers };
}
