/**
 * A namespace's retrain: a candidate VAE, PCA key and (with thumbnails) learned whitening fitted on a sample of its
 * features, checked by the quality gate on held-out images, and, when one passes (or with `force`), a new index
 * built under it and swapped in. The engine only starts and tracks retrains (one per namespace at a time).
 */
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { EditPairs } from '../ml/learned-whitening.js';
import { applyTransform, type RobustnessTransform } from '../ml/transforms.js';
import { saveVae } from '../ml/vae-files.js';
import { DEFAULT_VAE_HYPER, type VaeHyperParams } from '../ml/vae-hyper.js';
import { trainKeysInWorker } from '../ml/vae-worker-client.js';
import { keyIdOf } from './active-key.js';
import { buildIndex } from './build-index.js';
import { chooseKeyInWorker } from './key-check.js';
import type { CandidateVerdict } from './key-choice.js';
import { KEY_RULE, type EditedCopies, type KeyRule, type KeySignals } from './key-signals.js';
import { syncIndex, vaeDir, type Namespace } from './namespace.js';
import { MIN_GATE_SAMPLE } from './quality-gate.js';
import { splitFromPages } from './retrain-split.js';

/** Held-out images whose thumbnails are edited for the quality gate: ~3 s of feature extraction for 300 copies. */
const EDIT_SAMPLE = 100;
const GATE_EDITS = ['flip', 'crop70', 'colour'] as const;
/**
 * The PCA candidate is plain PCA-64 (no whitening): on openclipart it scores P@20 0.458 against raw 0.437, and on the
 * card decks 0.103 against 0.106 with coarse P@20 unchanged, while whitened PCA (shrinkage 1) scored 0.459 and 0.098
 * with coarse P@20 down 0.011 through the engine (docs/relevance.md).
 */
const PCA_SHRINKAGE = null;
/** PCA's subspace iteration costs rows × 1280 × 80 per round: a spread sample of this many rows is plenty. */
const PCA_FIT_ROWS = 3000;
/**
 * The learned whitening's pairs come from the edits the quality gate does not use (GATE_EDITS), so that the gate's
 * edit recall stays a check on images and edits the fit never saw.
 */
export const LW_EDITS = ['jpeg30', 'down25', 'text'] as const;
/**
 * Training images whose thumbnails are edited for the learned whitening: three model passes each, so a retrain pays
 * at most 4,500 extra passes (25-31 ms each at load 5-7 on 2 cores: ~2-2.5 min) whatever the collection's size. On
 * openclipart 1,000 edited images gave P@20 0.472 and all 1,337 0.476 (docs/relevance.md, session 9): 1,500 takes a
 * development set whole.
 */
export const LW_EDIT_IMAGES = 1500;
/** Lw-96 with λ 0.3: the best of the sweep over d 64 / 96 / 128 and λ 0.1 / 0.3 on both development sets. */
export const LW_COMPONENTS = 96;
export const LW_LAMBDA = 0.3;

/** The quality gate's held-out slice plus the fewest images a VAE can train on at all. */
export const MIN_RETRAIN_IMAGES = MIN_GATE_SAMPLE + 64;

export interface RetrainProgress {
  /** `style`: the posters' styles fitted for a trial after the switch (style-key.ts); quick where there are none. */
  phase: 'loading' | 'training' | 'checking' | 'encoding' | 'swapping' | 'style';
  epoch?: number;
  epochs?: number;
  loss?: number;
  done?: number;
  total?: number;
  secondsPerEpoch?: number;
}

/** What the quality check decided: `accept` when a candidate passed and became the key. */
export interface GateDecision {
  accept: boolean;
  /** One sentence for the admin, with the numbers. */
  reason: string;
  /** The current key's measures (raw features: overlap 1 by definition). */
  current: KeySignals;
  /** The chosen candidate's measures, or the first candidate's when none passed. */
  candidate: KeySignals;
  candidates: CandidateVerdict[];
}

export interface RetrainSummary {
  namespace: string;
  previousKey: string;
  /** The key now active: the candidate's when it was swapped in, else still the previous one. */
  key: string;
  candidateKey: string;
  swapped: boolean;
  /** Swapped in although the quality gate rejected it. */
  forced: boolean;
  gate: GateDecision;
  trainedOn: number;
  epochs: number;
  loss: number;
  activeUnits: number;
  latentDim: number;
  seconds: number;
  /** The style key the retrain started trying against the key now active (style-trial.ts), if any. */
  trial?: string;
}

/** What a retrain needs from the engine that runs it. */
export interface RetrainContext {
  ns: Namespace;
  featureDim: number;
  log: Logger;
  vaeHyper?: Partial<VaeHyperParams>;
  /** The quality check's thresholds over KEY_RULE (tests on small artificial collections, evaluations). */
  keyRule?: Partial<KeyRule>;
  /** Raw features of image bytes, for the gate's edited copies; absent when thumbnails are off (no copies then). */
  extract?: (bytes: Uint8Array) => Promise<Float32Array>;
}

/** Retrains `ctx.ns`; aborting `signal` rejects with TRAINING_CANCELLED and leaves the current key active. */
export async function retrainNamespace(ctx: RetrainContext, signal: AbortSignal, onProgress: (p: RetrainProgress) => void, force: boolean): Promise<RetrainSummary> {
  const started = Date.now();
  const { ns, log, featureDim } = ctx;
  const name = ns.name;
  const previousKey = keyIdOf(ns.key);
  const hadStyle = ns.key.style !== undefined;
  onProgress({ phase: 'loading' });
  const count = await ns.store.count();
  if (count < MIN_RETRAIN_IMAGES) {
    throw new AppError('NOT_ENOUGH_DATA', `"${name}" has ${count} images; a retrain needs at least ${MIN_RETRAIN_IMAGES}.`);
  }
  await ns.store.exclusive(() => ns.store.setMeta('lastRetrainCount', count));

  // Only the held-out slice and the training sample are kept (≤ 11,000 rows); the index build reads the pages again.
  const { heldOut, heldCount, heldIds, training, trainingCount, trainingIds } = await splitFromPages(ns.store.featurePages(featureDim), count, featureDim);
  onProgress({ phase: 'training' });
  // Before the training rows go to the worker (which may take their buffer).
  const editStart = Date.now();
  const pairs = await editPairs(ctx, trainingIds, training, signal, (done, total) => onProgress({ phase: 'training', done, total }));
  if (pairs) log.info(`namespace ${name}: ${pairs.count} edited thumbnail copies for the learned whitening in ${((Date.now() - editStart) / 1000).toFixed(1)} s`);
  // Validated by the worker; read here without loading tfjs into the serving thread.
  const hyper = { ...DEFAULT_VAE_HYPER, ...ctx.vaeHyper };
  const pca = { components: hyper.latent, shrinkage: PCA_SHRINKAGE, seed: hyper.seed, maxRows: PCA_FIT_ROWS };
  const lw = pairs && { components: LW_COMPONENTS, lambda: LW_LAMBDA, seed: hyper.seed, maxRows: PCA_FIT_ROWS, pairs };
  // The worker fits every candidate: fitting the linear keys here would hold up queries for seconds.
  const keys = await trainKeysInWorker(training, trainingCount, hyper, { pca, ...(lw ? { lw } : {}) }, {
    signal,
    onProgress: (p) => onProgress({ phase: 'training', epoch: p.epoch, epochs: p.epochs, loss: p.loss, secondsPerEpoch: p.secondsPerEpoch }),
  });
  const vae = keys.vae;
  const candidates = [vae, keys.pca!, ...(keys.lw ? [keys.lw] : [])];
  onProgress({ phase: 'checking' });
  const edited = await editedCopies(ctx, heldIds);
  if (signal.aborted) throw new AppError('TRAINING_CANCELLED', 'The retrain was cancelled.');
  const judged = await ns.store.feedback.judgedPairs(featureDim);
  const choice = await chooseKeyInWorker(heldOut, heldCount, ns.model ?? null, candidates, edited, { ...KEY_RULE, ...ctx.keyRule }, judged, signal);
  // --force switches to the VAE when the check refused every candidate.
  const model = choice.chosen ?? (force ? vae : null);
  const gate: GateDecision = {
    accept: choice.chosen !== null,
    reason: choice.reason,
    current: choice.current ?? { overlap: 1, editRecall: choice.raw.editRecall },
    candidate: choice.candidates[Math.max(0, choice.candidates.findIndex((c) => c.failure === null))].signals,
    candidates: choice.candidates,
  };
  const index = model
    ? await buildIndex(model, ns.store.featurePages(featureDim), {
        dir: ns.dir,
        total: count,
        storeNextId: await ns.store.nextId(),
        signal,
        onProgress: (done, total) => onProgress({ phase: 'encoding', done, total }),
      })
    : undefined;
  const summary = (swapped: boolean): RetrainSummary => ({
    namespace: name,
    previousKey,
    key: keyIdOf(ns.key),
    candidateKey: keyIdOf({ kind: 'vae', vaeId: (model ?? vae).meta.id }),
    swapped,
    forced: swapped && !gate.accept,
    gate,
    trainedOn: vae.meta.trainingSize,
    epochs: vae.meta.epochsTrained,
    loss: vae.meta.loss.final,
    activeUnits: (model ?? vae).meta.activeUnits,
    latentDim: (model ?? vae).meta.latentDim,
    seconds: (Date.now() - started) / 1000,
    ...(ns.trialState ? { trial: ns.trialState.candidate } : {}),
  });
  if (!index || !model) {
    log.warn(`namespace ${name}: retrained model not used: ${gate.reason}`);
    onProgress({ phase: 'style' });
    await styleAfterRetrain(ns, false);
    return summary(false);
  }

  onProgress({ phase: 'swapping' });
  await saveVae(model, vaeDir(ns.dir, model.meta.id));
  await ns.store.exclusive(async () => {
    // Images indexed or removed while the VAE trained are brought over before the switch.
    await syncIndex(index, ns.store, (image) => model.encode(image.features, 1));
    // The index is not written under the lock (at 1M, ~3.5 s of queries waiting): the worker saved it, and one that
    // changed since is saved later (Namespace.activate).
    await ns.activate(model, index);
  });
  onProgress({ phase: 'style' });
  await styleAfterRetrain(ns, hadStyle);
  const done = summary(true);
  log.info(`namespace ${name}: retrained on ${done.trainedOn} images in ${done.seconds.toFixed(1)} s, now keyed on ${done.key}${done.forced ? ' (forced past the quality gate)' : ''}: ${gate.reason}`);
  return done;
}

/**
 * After a retrain the posters' styles are fitted again: on the new key at once when the askers had adopted a style
 * key before (what they preferred is a property of the community, not of the key underneath), else as a trial that
 * their judgements decide. A collection whose images have too few posters (the CLI's) gets neither.
 */
async function styleAfterRetrain(ns: Namespace, adopted: boolean): Promise<void> {
  if (!(await ns.startTrial())) return;
  if (adopted) await ns.adoptTrial();
}

/**
 * Edited copies (flipped, cropped, recoloured) of up to EDIT_SAMPLE held-out images, made from their stored
 * thumbnails: the quality gate asks each key to find the original of every copy (key-signals.ts).
 */
async function editedCopies(ctx: RetrainContext, heldIds: number[]): Promise<EditedCopies | undefined> {
  const step = Math.max(1, Math.floor(heldIds.length / EDIT_SAMPLE));
  const positions = Array.from({ length: Math.ceil(heldIds.length / step) }, (_, j) => j * step);
  const copies = await editThumbnails(ctx, heldIds, positions, GATE_EDITS);
  if (!copies) return undefined;
  return { features: copies.features, count: copies.of.length, targets: Int32Array.from(copies.of) };
}

/**
 * The learned whitening's pairs: the stored features of up to LW_EDIT_IMAGES training images (spread over the
 * sample) against their thumbnails' LW_EDITS copies. Undefined without thumbnails or an extractor: no Lw candidate.
 */
async function editPairs(
  ctx: RetrainContext,
  trainingIds: number[],
  training: Float32Array,
  signal: AbortSignal,
  onProgress: (done: number, total: number) => void,
): Promise<EditPairs | undefined> {
  const { featureDim } = ctx;
  const images = Math.min(LW_EDIT_IMAGES, trainingIds.length);
  const positions = Array.from({ length: images }, (_, j) => Math.floor((j * trainingIds.length) / images));
  const copies = await editThumbnails(ctx, trainingIds, positions, LW_EDITS, signal, onProgress);
  if (!copies) return undefined;
  const original = new Float32Array(copies.of.length * featureDim);
  copies.of.forEach((position, p) => original.set(training.subarray(position * featureDim, (position + 1) * featureDim), p * featureDim));
  return { original, edited: copies.features, count: copies.of.length };
}

/**
 * Features of `edits` of the stored thumbnails of ids[position] for each of `positions`; `of[c]` is the position
 * copy c was made from. Undefined when there is no extractor (thumbnails off) or no copy could be made.
 */
async function editThumbnails(
  ctx: RetrainContext,
  ids: number[],
  positions: number[],
  edits: readonly RobustnessTransform[],
  signal?: AbortSignal,
  onProgress?: (done: number, total: number) => void,
): Promise<{ features: Float32Array; of: number[] } | undefined> {
  const { ns, extract, featureDim } = ctx;
  if (!extract) return undefined;
  const of: number[] = [];
  const vectors: Float32Array[] = [];
  for (const [done, position] of positions.entries()) {
    if (signal?.aborted) throw new AppError('TRAINING_CANCELLED', 'The retrain was cancelled.');
    onProgress?.(done, positions.length);
    const thumbnail = await ns.store.getThumbnail(ids[position]);
    if (!thumbnail) continue;
    for (const edit of edits) {
      try {
        vectors.push(await extract(await applyTransform(thumbnail, edit, ns.background)));
        of.push(position);
      } catch {
        // A thumbnail that cannot be edited or read gives no copy; the others still count.
      }
    }
  }
  if (of.length === 0) return undefined;
  const features = new Float32Array(of.length * featureDim);
  vectors.forEach((v, i) => features.set(v, i * featureDim));
  return { features, of };
}
