/**
 * Worker-thread entry for VAE training; started by vae-worker-client.ts, never imported elsewhere.
 * Every outcome, including a failure, is posted as a message so the parent can map it to an AppError.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AppError, isAppError, type ErrorCode } from '../errors.js';
import type { VaeHyperParams, VaeMeta, VaeWeights } from './vae-model.js';
import { trainVae, type VaeProgress } from './vae-train.js';

export type VaeWorkerInput = {
  features: Float32Array;
  n: number;
  hyper: Partial<VaeHyperParams>;
  /** Set to non-zero by the parent to cancel; read between batches. */
  stop: Int32Array;
};

export type VaeWorkerMessage =
  | { type: 'progress'; progress: VaeProgress }
  | { type: 'done'; meta: VaeMeta; weights: VaeWeights }
  | { type: 'error'; error: { code: ErrorCode; message: string; details: Record<string, unknown> } };

function toAppError(error: unknown): AppError {
  if (isAppError(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new AppError('TRAINING_FAILED', `Training failed: ${reason}`, {
    details: { reason, stack: error instanceof Error ? error.stack : undefined },
  });
}

async function run(port: NonNullable<typeof parentPort>, input: VaeWorkerInput): Promise<void> {
  const post = (message: VaeWorkerMessage, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);
  try {
    const model = await trainVae(input.features, input.n, input.hyper, {
      onProgress: (progress) => post({ type: 'progress', progress }),
      shouldStop: () => Atomics.load(input.stop, 0) !== 0,
    });
    const buffers = new Set(Object.values(model.weights).map((array) => array.buffer as ArrayBuffer));
    post({ type: 'done', meta: model.meta, weights: model.weights }, [...buffers]);
  } catch (error) {
    post({ type: 'error', error: toAppError(error).toJSON() });
  }
}

if (!parentPort) throw new Error('vae.worker.js must be started as a worker thread');
await run(parentPort, workerData as VaeWorkerInput);
