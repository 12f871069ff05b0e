/**
 * Worker-thread entry for VAE training; started by vae-worker-client.ts (through runWorkerTask), never imported
 * elsewhere. Every outcome, including a failure, is posted as a message so the parent can map it to an AppError.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AppError, isAppError, type ErrorCode } from '../errors.js';
import type { VaeHyperParams } from './vae-hyper.js';
import type { VaeMeta, VaeWeights } from './vae-model.js';
import type { EditPairs, LearnedWhiteningOptions } from './learned-whitening.js';
import { fitLearnedWhiteningKey, fitPcaKey, type PcaKeyOptions } from './linear-key.js';
import { trainVae, type VaeProgress } from './vae-train.js';

export type VaeWorkerInput = {
  features: Float32Array;
  n: number;
  hyper: Partial<VaeHyperParams>;
  /** Set to non-zero by the parent to cancel; read between batches. */
  stop: Int32Array;
  /** Also fit a PCA key on (a spread sample of) the same rows, after training: kept off the parent's event loop. */
  pca?: PcaKeyOptions & { maxRows: number };
  /** Also fit the learned whitening (learned-whitening.ts) on the same spread sample and these edit pairs. */
  lw?: LearnedWhiteningOptions & { maxRows: number; pairs: EditPairs };
};

type ModelData = { meta: VaeMeta; weights: VaeWeights };
export type VaeWorkerResult = ModelData & { pca?: ModelData; lw?: ModelData };

/** runWorkerTask's replies (util/worker-task.ts), plus progress. */
export type VaeWorkerMessage =
  | { type: 'progress'; progress: VaeProgress }
  | { type: 'done'; result: VaeWorkerResult }
  | { type: 'error'; error: { code: ErrorCode; message: string; details: Record<string, unknown> } };

/** At most `max` rows, evenly spread: PCA's subspace iteration costs rows × 1280 × 80 per round. */
function spreadSample(features: Float32Array, n: number, max: number): [Float32Array, number] {
  if (n <= max) return [features, n];
  const d = features.length / n;
  const out = new Float32Array(max * d);
  for (let j = 0; j < max; j++) {
    const r = Math.floor((j * n) / max);
    out.set(features.subarray(r * d, (r + 1) * d), j * d);
  }
  return [out, max];
}

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
    const pca = input.pca ? fitPcaKey(...spreadSample(input.features, input.n, input.pca.maxRows), model.meta.inputDim, input.pca) : undefined;
    const lw = input.lw ? fitLearnedWhiteningKey(...spreadSample(input.features, input.n, input.lw.maxRows), model.meta.inputDim, input.lw.pairs, input.lw) : undefined;
    const data = (m: typeof model) => ({ meta: m.meta, weights: m.weights });
    const buffers = new Set([model, pca, lw].flatMap((m) => (m ? Object.values(m.weights) : [])).map((array) => array.buffer as ArrayBuffer));
    post({ type: 'done', result: { ...data(model), ...(pca ? { pca: data(pca) } : {}), ...(lw ? { lw: data(lw) } : {}) } }, [...buffers]);
  } catch (error) {
    post({ type: 'error', error: toAppError(error).toJSON() });
  }
}

if (!parentPort) throw new Error('vae.worker.js must be started as a worker thread');
await run(parentPort, workerData as VaeWorkerInput);
