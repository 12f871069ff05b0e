/**
 * Worker-thread entry for a retrain's quality check (key-choice.ts): its exact neighbour searches over the held-out
 * slice take seconds of JavaScript, which on the main thread would hold up every query meanwhile. Started by
 * key-check.ts, never imported elsewhere.
 */
import { VaeModel } from '../ml/vae-model.js';
import { serveWorkerTask } from '../util/worker-task.js';
import { chooseKey } from './key-choice.js';
import type { KeyCheckInput, KeyCheckResult } from './key-check.js';

await serveWorkerTask<KeyCheckInput, KeyCheckResult>('TRAINING_FAILED', async (input) => {
  const model = (m: KeyCheckInput['candidates'][number]) => new VaeModel(m.meta, m.weights);
  const candidates = input.candidates.map(model);
  const choice = chooseKey(input.heldOut, input.n, input.current && model(input.current), candidates, input.edited, input.rule, undefined, input.judged);
  return { result: { ...choice, chosen: choice.chosen ? candidates.indexOf(choice.chosen) : -1 } };
});
