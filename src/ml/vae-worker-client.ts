/**
 * Runs VAE training in a worker thread so the process keeps answering queries, and so that a crash in
 * tfjs or wasm ends the worker rather than the process.
 */
import { AppError, isAppError } from '../errors.js';
import { runWorkerTask } from '../util/worker-task.js';
import type { VaeHyperParams } from './vae-hyper.js';
import { VaeModel } from './vae-model.js';
import type { VaeProgress } from './vae-train.js';
import type { VaeWorkerInput, VaeWorkerMessage, VaeWorkerResult } from './vae.worker.js';

export type TrainVaeInWorkerOptions = {
  onProgress?: (p: VaeProgress) => void;
  /** Aborting ends training within one batch and rejects with TRAINING_CANCELLED. */
  signal?: AbortSignal;
};

/** How long a cancelled worker may take to reach its next batch boundary before it is terminated. */
const CANCEL_GRACE_MS = 2_000;

function cancelledError(): AppError {
  return new AppError('TRAINING_CANCELLED', 'Training was cancelled.');
}

/**
 * Trains with trainVae in a worker thread. `features` (n × inputDim, row-major) is transferred, not
 * copied, when it spans its whole ArrayBuffer: it is then detached here, so pass a copy if you still need it.
 */
export async function trainVaeInWorker(
  features: Float32Array,
  n: number,
  hyper: Partial<VaeHyperParams>,
  options: TrainVaeInWorkerOptions = {},
): Promise<VaeModel> {
  return (await trainKeysInWorker(features, n, hyper, {}, options)).vae;
}

export type TrainedKeys = { vae: VaeModel; pca?: VaeModel; lw?: VaeModel };

/**
 * trainVaeInWorker, and with `linear.pca` also a PCA key, with `linear.lw` also the learned whitening (linear-key.ts),
 * fitted in the same worker on the same rows.
 */
export async function trainKeysInWorker(
  features: Float32Array,
  n: number,
  hyper: Partial<VaeHyperParams>,
  linear: Pick<VaeWorkerInput, 'pca' | 'lw'>,
  options: TrainVaeInWorkerOptions = {},
): Promise<TrainedKeys> {
  const { onProgress, signal } = options;
  if (signal?.aborted) throw cancelledError();
  const wholeBuffer =
    features.buffer instanceof ArrayBuffer && features.byteOffset === 0 && features.byteLength === features.buffer.byteLength;
  const data = wholeBuffer ? features : features.slice();
  // Set on abort: the worker stops at its next batch boundary (terminating tfjs mid-batch is the fallback).
  const stop = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  const input: VaeWorkerInput = { features: data, n, hyper, stop, ...linear };
  const result = await runWorkerTask<VaeWorkerResult>(new URL('./vae.worker.js', import.meta.url), input, {
    code: 'TRAINING_FAILED',
    what: 'the training worker',
    signal,
    cancelled: cancelledError,
    softCancel: { stop: () => Atomics.store(stop, 0, 1), graceMs: CANCEL_GRACE_MS },
    // The edit pairs are made for this call alone; the training rows are copied above when they are not.
    transfer: [data.buffer, ...(linear.lw ? [linear.lw.pairs.original.buffer, linear.lw.pairs.edited.buffer] : [])] as ArrayBuffer[],
    onMessage: (message) => {
      const progress = message as VaeWorkerMessage;
      if (progress.type === 'progress') onProgress?.(progress.progress);
    },
  });
  try {
    const model = (m: typeof result) => new VaeModel(m.meta, m.weights);
    return { vae: model(result), ...(result.pca ? { pca: model(result.pca) } : {}), ...(result.lw ? { lw: model(result.lw) } : {}) };
  } catch (error) {
    // A malformed result.
    throw isAppError(error) ? error : new AppError('TRAINING_FAILED', 'Training failed.', { cause: error });
  }
}
