/**
 * Which index key a retrain leaves a namespace on. Every candidate (the collection's own VAE, PCA-64 and, when it has
 * thumbnails, the learned whitening Lw-96, all fitted on the same training rows) is checked against the label-free
 * rule (key-signals.ts) on held-out images; of those that pass, the one with the best edit recall wins, else the
 * current key stays.
 */
import type { VaeModel } from '../ml/vae-model.js';
import { keyKindOf } from '../ml/linear-key.js';
import { KEY_RULE, keyRuleFailure, measureKey, measureMisorder, type EditedCopies, type JudgedPairs, type KeyRule, type KeySignals } from './key-signals.js';
import { cosineNeighbours, MIN_GATE_SAMPLE } from './quality-gate.js';

export type CandidateVerdict = { key: string; kind: string; signals: KeySignals; failure: string | null };

export type KeyChoice = {
  /** The candidate to switch to, or null to keep the current key. */
  chosen: VaeModel | null;
  /** One sentence for the admin, with the numbers. */
  reason: string;
  raw: KeySignals;
  current: KeySignals | null;
  candidates: CandidateVerdict[];
};

const describe = (model: VaeModel): string => {
  const kind = keyKindOf(model);
  const names = { vae: 'the new VAE', pca: 'PCA', 'pca-whitened': 'whitened PCA', 'learned-whitening': 'the whitening learned from edited copies, Lw' } as const;
  return kind === 'vae' ? names.vae : `${names[kind]}-${model.meta.latentDim}`;
};

export function chooseKey(
  heldOut: Float32Array,
  n: number,
  current: VaeModel | null,
  candidates: VaeModel[],
  edited?: EditedCopies,
  rule: KeyRule = KEY_RULE,
  k = 20,
  /** The namespace's relevance feedback, judged only when it holds at least `rule.minJudgedPairs` pairs. */
  judged?: JudgedPairs,
): KeyChoice {
  if (candidates.length === 0) throw new RangeError('chooseKey needs at least one candidate');
  const d = candidates[0].meta.inputDim;
  if (n < MIN_GATE_SAMPLE || heldOut.length < n * d) {
    throw new RangeError(`the quality gate needs at least ${MIN_GATE_SAMPLE} held-out rows of ${d} features (got ${n})`);
  }
  const kk = Math.min(k, n - 1);
  const rawNeighbours = cosineNeighbours(heldOut, n, d, kk);
  const enough = judged !== undefined && judged.pairs.length / 3 >= rule.minJudgedPairs;
  const measure = (encode: (f: Float32Array, c: number) => Float32Array): KeySignals => ({
    ...measureKey(encode, heldOut, n, rawNeighbours, kk, edited),
    ...(enough ? measureMisorder(encode, judged) : {}),
  });
  const raw = measure((f) => f);
  const now = current ? measure((f, c) => current.encode(f, c)) : null;
  const verdicts: CandidateVerdict[] = candidates.map((model) => {
    const signals = measure((f, c) => model.encode(f, c));
    const invalid = !Number.isFinite(signals.overlap);
    return { key: model.meta.id, kind: keyKindOf(model), signals, failure: invalid ? 'it produces invalid values' : keyRuleFailure(signals, raw, now, rule) };
  });
  // Of the candidates that pass, the one whose edited copies find their originals most often: on both development
  // sets that ranked the safe keys as their true P@20 did (docs/relevance.md, "Gate check"). Ties, and a check
  // without edited copies, go to the order of preference.
  let winner = -1;
  for (const [i, v] of verdicts.entries()) {
    if (v.failure !== null) continue;
    if (winner < 0 || (v.signals.editRecall ?? 0) > (verdicts[winner].signals.editRecall ?? 0)) winner = i;
  }
  const refusals = verdicts.map((v, i) => `${describe(candidates[i])}: ${v.failure}`).join('; ');
  if (winner < 0) {
    return { chosen: null, reason: `No candidate passed the quality check (${refusals}); the current key stays active.`, raw, current: now, candidates: verdicts };
  }
  const chosen = candidates[winner];
  const passed = verdicts[winner].signals;
  const edits = passed.editRecall === undefined ? '' : `, edited copies found first ${passed.editRecall.toFixed(3)} (raw ${raw.editRecall!.toFixed(3)})`;
  const others = verdicts
    .map((v, i) => (i === winner ? '' : `${describe(candidates[i])} ${v.failure ? `refused: ${v.failure}` : `passed with edit recall ${v.signals.editRecall?.toFixed(3) ?? '–'}`}`))
    .filter(Boolean);
  const before = others.length > 0 ? ` (${others.join('; ')})` : '';
  return {
    chosen,
    reason: `Switched to ${describe(chosen)}: it keeps ${passed.overlap.toFixed(3)} of the raw-feature neighbours${edits}${before}.`,
    raw,
    current: now,
    candidates: verdicts,
  };
}
