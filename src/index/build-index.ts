/**
 * Builds a retrain's new index off the main thread: every stored image encoded with the new VAE and inserted into a
 * fresh HNSW graph by a worker (build-index.worker.ts), fed the store's float16 feature pages as they are read, so
 * no thread holds every feature at once. The worker saves the index to the namespace's folder (with its
 * checksums: hnswlib crashes on a corrupted graph file) and this thread loads it once the worker has exited, so
 * the worker's graph and the loaded one are never in memory together.
 */
import { once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { AppError } from '../errors.js';
import type { VaeMeta, VaeModel, VaeWeights } from '../ml/vae-model.js';
import { runWorkerTask } from '../util/worker-task.js';
import { keyIdOf } from './namespace.js';
import type { FeaturePage } from './feature-blobs.js';
import { removeIndexFiles, VectorIndex } from './vector-index.js';

/** Room for the images indexed while the retrain runs, which the swap adds before switching. */
const SPARE_CAPACITY = 1024;
/** Pages sent ahead of the worker's progress: enough to keep it busy, few enough that memory stays flat. */
const PAGES_AHEAD = 2;

export type BuildIndexInput = { meta: VaeMeta; weights: VaeWeights; keyId: string; capacity: number; dir: string; storeNextId?: number };
export type BuildIndexMessage = { type: 'page'; ids: number[]; f16: Uint8Array } | { type: 'end' };
export type BuildIndexProgress = { type: 'progress'; done: number };

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
  signal: AbortSignal;
  onProgress: (done: number, total: number) => void;
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
  const { dir, total, signal } = options;
  const keyId = keyIdOf({ kind: 'vae', vaeId: model.meta.id });
  let worker: Worker | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  let sent = 0;
  let answered = 0;
  let stopped = false;
  let wake: (() => void) | undefined;
  const input: BuildIndexInput = { meta: model.meta, weights: model.weights, keyId, capacity: total + SPARE_CAPACITY, dir, storeNextId: options.storeNextId };
  options.onProgress(0, total);
  const building = runWorkerTask<{ size: number }>(new URL('./build-index.worker.js', import.meta.url), input, {
    code: 'TRAINING_FAILED',
    what: 'the index build',
    signal,
    onStart: (started) => {
      worker = started;
      // `once` rejects on an 'error' event, which runWorkerTask reports.
      exited = once(started, 'exit').catch(() => undefined);
    },
    onMessage: (message) => {
      answered += 1;
      options.onProgress((message as BuildIndexProgress).done, total);
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
      if (stopped || signal.aborted) break;
      const f16 = owned(page.f16);
      worker!.postMessage({ type: 'page', ids: page.ids, f16 } satisfies BuildIndexMessage, [f16.buffer as ArrayBuffer]);
      sent += 1;
    }
    if (!stopped) worker!.postMessage({ type: 'end' } satisfies BuildIndexMessage);
    await building;
    // The worker is terminated once it answers; its graph (≈ 500 MB at 1M) is freed when it has exited.
    await exited;
    if (signal.aborted) throw cancelled();
    const index = await VectorIndex.load(dir, keyId);
    if (!index) throw new AppError('TRAINING_FAILED', 'The index build saved no index.');
    return index;
  } catch (error) {
    // Reading the store failed or the retrain was cancelled: the worker, still waiting for pages, goes first.
    await worker?.terminate();
    await removeIndexFiles(dir, keyId);
    throw signal.aborted ? cancelled() : error;
  }
}
