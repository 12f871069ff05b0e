/**
 * Runs VAE training in a worker thread so the process keeps answering queries, and so that a crash in
 * tfjs or wasm ends the worker rather than the process.
 */
import { Worker } from 'node:worker_threads';
import { AppError, isAppError } from '../errors.js';
import type { VaeHyperParams } from './vae-hyper.js';
import { VaeModel } from './vae-model.js';
import type { VaeProgress } from './vae-train.js';
import type { VaeWorkerInput, VaeWorkerMessage } from './vae.worker.js';

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
  return (await trainKeysInWorker(features, n, hyper, undefined, options)).vae;
}

export type TrainedKeys = { vae: VaeModel; pca?: VaeModel };

/** trainVaeInWorker, and with `pca` also a PCA key (linear-key.ts) fitted in the same worker on the same rows. */
export function trainKeysInWorker(
  features: Float32Array,
  n: number,
  hyper: Partial<VaeHyperParams>,
  pca: VaeWorkerInput['pca'],
  options: TrainVaeInWorkerOptions = {},
): Promise<TrainedKeys> {
  const { onProgress, signal } = options;
  if (signal?.aborted) return Promise.reject(cancelledError());
  return new Promise<TrainedKeys>((resolve, reject) => {
    const wholeBuffer =
      features.buffer instanceof ArrayBuffer && features.byteOffset === 0 && features.byteLength === features.buffer.byteLength;
    const data = wholeBuffer ? features : features.slice();
    const stop = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
    const input: VaeWorkerInput = { features: data, n, hyper, stop, ...(pca ? { pca } : {}) };
    let worker: Worker;
    try {
      worker = new Worker(new URL('./vae.worker.js', import.meta.url), {
        workerData: input,
        transferList: [data.buffer as ArrayBuffer],
      });
    } catch (error) {
      reject(new AppError('TRAINING_FAILED', 'Could not start the training worker.', { cause: error }));
      return;
    }

    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const finish = (error: AppError | undefined, model?: TrainedKeys): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(killTimer);
      void worker.terminate();
      if (error) reject(error);
      else resolve(model!);
    };
    const onAbort = (): void => {
      Atomics.store(stop, 0, 1);
      killTimer = setTimeout(() => finish(cancelledError()), CANCEL_GRACE_MS);
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    worker.on('message', (message: VaeWorkerMessage) => {
      if (settled) return;
      try {
        if (message.type === 'progress') onProgress?.(message.progress);
        else if (message.type === 'error') finish(AppError.fromJSON(message.error));
        else if (signal?.aborted) finish(cancelledError());
        else {
          const vae = new VaeModel(message.meta, message.weights);
          finish(undefined, message.pca ? { vae, pca: new VaeModel(message.pca.meta, message.pca.weights) } : { vae });
        }
      } catch (error) {
        // A throwing onProgress (or a malformed result) must not become an uncaught exception here.
        finish(isAppError(error) ? error : new AppError('TRAINING_FAILED', 'Training failed.', { cause: error }));
      }
    });
    worker.on('error', (error) => {
      finish(new AppError('TRAINING_FAILED', `The training worker crashed: ${error.message}`, { cause: error }));
    });
    worker.on('exit', (code) => {
      finish(new AppError('TRAINING_FAILED', `The training worker stopped unexpectedly (exit code ${code}).`, { details: { code } }));
    });
  });
}
