/**
 * chooseKey (key-choice.ts) in a worker thread, with the same inputs and the same answer: a retrain's quality check
 * must not stall the queries the process keeps answering meanwhile.
 */
import type { VaeMeta, VaeModel, VaeWeights } from '../ml/vae-model.js';
import { runWorkerTask } from '../util/worker-task.js';
import type { KeyChoice } from './key-choice.js';
import type { EditedCopies, JudgedPairs, KeyRule } from './key-signals.js';

type ModelData = { meta: VaeMeta; weights: VaeWeights };

export type KeyCheckInput = {
  heldOut: Float32Array;
  n: number;
  current: ModelData | null;
  candidates: ModelData[];
  edited?: EditedCopies;
  rule: KeyRule;
  judged?: JudgedPairs;
};

/** KeyChoice with the chosen candidate as its position in `candidates` (-1: none). */
export type KeyCheckResult = Omit<KeyChoice, 'chosen'> & { chosen: number };

const data = (model: VaeModel): ModelData => ({ meta: model.meta, weights: model.weights });

export async function chooseKeyInWorker(
  heldOut: Float32Array,
  n: number,
  current: VaeModel | null,
  candidates: VaeModel[],
  edited: EditedCopies | undefined,
  rule: KeyRule,
  judged: JudgedPairs | undefined,
  signal?: AbortSignal,
): Promise<KeyChoice> {
  const input: KeyCheckInput = { heldOut, n, current: current && data(current), candidates: candidates.map(data), edited, rule, judged };
  const result = await runWorkerTask<KeyCheckResult>(new URL('./key-check.worker.js', import.meta.url), input, { code: 'TRAINING_FAILED', what: 'the quality check', signal });
  return { ...result, chosen: result.chosen < 0 ? null : candidates[result.chosen] };
}
