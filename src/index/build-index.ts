/**
 * Builds an index off the main thread: every stored image keyed (encoded with a VAE, or its raw features) and
 * inserted into a fresh HNSW graph by a worker (build-index.worker.ts), fed the store's float16 feature pages as they
 * are read. A retrain's new index streams through it, so no thread holds every feature at once; a style key's
 * (style-key.ts) is fitted there first, its worker keeping every key until the posters' offsets are known. The worker
 * saves the index to the namespace's folder (with its checksums: hnswlib crashes on a corrupted graph file) and this
 * thread loads it once the worker has exited, so the worker's graph and the loaded one are never in memory together.
 */
import { once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { AppError } from '../errors.js';
import type { VaeMeta, VaeModel, VaeWeights } from '../ml/vae-model.js';
import { runWorkerTask } from '../util/worker-task.js';
import { keyIdOf } from './active-key.js';
import type { FeaturePage } from './feature-blobs.js';
import type { StyleOffsets } from './style-key.js';
import { removeIndexFiles, VectorIndex } from './vector-index.js';

/** Room for the images indexed while the retrain runs, which the swap adds before switching. */
const SPARE_CAPACITY = 1024;
/** Pages sent ahead of the worker's progress: enough to keep it busy, few enough that memory stays flat. */
const PAGES_AHEAD = 2;

export type BuildIndexInput = {
  /** The VAE whose μ are the keys; none: the raw features are. */
  vae?: { meta: VaeMeta; weights: VaeWeights };
  featureDim: number;
  keyId: string;
  capacity: number;
  dir: string;
  storeNextId?: number;
  /** Index the style key of this id: each row's poster offset, fitted on every key first, taken out of its key. */
  styleId?: string;
};
/** `posters` (a style build only): each row's poster, null for none. */
export type BuildIndexMessage = { type: 'page'; ids: number[]; f16: Uint8Array; posters?: Array<string | null> } | { type: 'end' };
export type BuildIndexProgress = { type: 'progress'; done: number };
export type BuildIndexResult = { size: number; style?: StyleOffsets };

/** A feature page with each row's poster, for a style build. */
export type PosterPage = FeaturePage & { posters: Array<string | null> };

export interface BuildIndexOptions {
  /** Where the index is saved: the namespace's folder. */
  dir: string;
  /** Rows expected (sizes the graph; more may come). */
  total: number;
  /**
   * The store's next id before its pages were read, saved with the index: if the store still has it at the swap
   * and nothing was added or removed meanwhile, the saved files are already the index (see Namespace.activate).
   */
  storeNextId?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

function cancelled(): AppError {
  return new AppError('TRAINING_CANCELLED', 'The retrain was cancelled.');
}

/** Its own buffer, so that it can be transferred to the worker rather than copied. */
function owned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer ? bytes : bytes.slice();
}

/**
 * An index keyed `vae-<id>` holding μ of every row of `pages` under its id, saved in `options.dir` and loaded: it
 * answers from its flat vectors at once and from its graph once hnswlib has read it (`ready()`), so a swap can
 * free the replaced index's graph before this one's is read. Aborting `signal` rejects with TRAINING_CANCELLED
 * and removes what the worker wrote.
 */
export async function buildIndex(model: VaeModel, pages: AsyncIterable<FeaturePage>, options: BuildIndexOptions): Promise<VectorIndex> {
  const keyId = keyIdOf({ kind: 'vae', vaeId: model.meta.id });
  const input: BuildIndexInput = { vae: { meta: model.meta, weights: model.weights }, featureDim: model.meta.inputDim, keyId, capacity: options.total + SPARE_CAPACITY, dir: options.dir, storeNextId: options.storeNextId };
  return (await buildInWorker(input, pages, options)).index;
}

/**
 * The style key `keyId` of the rows of `pages` (keyed on `model`'s μ, or on their raw features without one): the
 * posters' offsets fitted on them, `styleId` naming the fit, and its index, saved in `options.dir` and loaded as
 * buildIndex's is. Every row is the fit's: the caller leaves out images it does not know the poster of.
 */
export async function buildStyleIndex(
  model: VaeModel | undefined,
  featureDim: number,
  style: { styleId: string; keyId: string },
  pages: AsyncIterable<PosterPage>,
  options: BuildIndexOptions,
): Promise<{ style: StyleOffsets; index: VectorIndex }> {
  const input: BuildIndexInput = {
    ...(model ? { vae: { meta: model.meta, weights: model.weights } } : {}),
    featureDim,
    keyId: style.keyId,
    capacity: options.total + SPARE_CAPACITY,
    dir: options.dir,
    storeNextId: options.storeNextId,
    styleId: style.styleId,
  };
  const { index, result } = await buildInWorker(input, pages, options);
  if (!result.style) throw new AppError('TRAINING_FAILED', 'The style key build returned no offsets.');
  return { style: result.style, index };
}

/** Streams `pages` to a build worker started with `input`, then loads the index it saved. */
async function buildInWorker(input: BuildIndexInput, pages: AsyncIterable<FeaturePage | PosterPage>, options: BuildIndexOptions): Promise<{ index: VectorIndex; result: BuildIndexResult }> {
  const { dir, total, signal } = options;
  const { keyId } = input;
  let worker: Worker | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  let sent = 0;
  let answered = 0;
  let stopped = false;
  let wake: (() => void) | undefined;
  options.onProgress?.(0, total);
  const building = runWorkerTask<BuildIndexResult>(new URL('./build-index.worker.js', import.meta.url), input, {
    code: 'TRAINING_FAILED',
    what: input.styleId === undefined ? 'the index build' : 'the style key build',
    signal,
    onStart: (started) => {
      worker = started;
      // `once` rejects on an 'error' event, which runWorkerTask reports.
      exited = once(started, 'exit').catch(() => undefined);
    },
    onMessage: (message) => {
      answered += 1;
      options.onProgress?.((message as BuildIndexProgress).done, total);
      wake?.();
    },
  });
  // Whichever comes first, the feeding below must stop: the worker failing or the retrain being cancelled.
  void building.catch(() => undefined).finally(() => {
    stopped = true;
    wake?.();
  });
  try {
    for await (const page of pages) {
      while (!stopped && sent - answered >= PAGES_AHEAD) await new Promise<void>((resolve) => (wake = resolve));
      if (stopped || signal?.aborted) break;
      const f16 = owned(page.f16);
      const posters = 'posters' in page ? { posters: page.posters } : {};
      worker!.postMessage({ type: 'page', ids: page.ids, f16, ...posters } satisfies BuildIndexMessage, [f16.buffer as ArrayBuffer]);
      sent += 1;
    }
    if (!stopped) worker!.postMessage({ type: 'end' } satisfies BuildIndexMessage);
    const result = await building;
    // The worker is terminated once it answers; its graph (≈ 500 MB at 1M) is freed when it has exited.
    await exited;
    if (signal?.aborted) throw cancelled();
    const index = await VectorIndex.load(dir, keyId);
    if (!index) throw new AppError('TRAINING_FAILED', 'The index build saved no index.');
    return { index, result };
  } catch (error) {
    // Reading the store failed or the retrain was cancelled: the worker, still waiting for pages, goes first.
    await worker?.terminate();
    await removeIndexFiles(dir, keyId);
    throw signal?.aborted ? cancelled() : error;
  }
}
