/**
 * Builds a retrain's new index: every stored image encoded with the new VAE and added to a fresh HNSW graph.
 */
import { setImmediate } from 'node:timers/promises';
import { AppError } from '../errors.js';
import type { VaeEncoderWorker } from '../ml/vae-encoder-client.js';
import type { VaeModel } from '../ml/vae-model.js';
import type { FeatureMatrix } from './store.js';
import { keyIdOf } from './namespace.js';
import { VectorIndex } from './vector-index.js';

/** Rows per request to the encoding worker: 5 MB of features, ~50 ms of its work. */
const ENCODE_CHUNK = 1_000;
/** Inserts between turns of the event loop: ~50-100 ms of HNSW work, so a query waits at most that long. */
const INSERT_BATCH = 250;
/** Room for the images indexed while the retrain runs, which the swap adds before switching. */
const SPARE_CAPACITY = 1024;

export interface BuildIndexOptions {
  signal: AbortSignal;
  onProgress: (done: number, total: number) => void;
}

function cancelled(): AppError {
  return new AppError('TRAINING_CANCELLED', 'The retrain was cancelled.');
}

/**
 * An index keyed `vae-<id>` holding μ of every row of `matrix` under its id. The worker encodes chunk i + 1 while
 * this thread inserts chunk i, so the whole takes about as long as the slower of the two (the inserts); the event
 * loop gets a turn every INSERT_BATCH inserts so that queries keep being answered. Aborting `signal` rejects with
 * TRAINING_CANCELLED at the next turn.
 */
export async function buildIndex(model: VaeModel, matrix: FeatureMatrix, encoder: VaeEncoderWorker, options: BuildIndexOptions): Promise<VectorIndex> {
  const { ids, features } = matrix;
  const { inputDim: d, latentDim: l } = model.meta;
  const total = ids.length;
  const index = VectorIndex.create(keyIdOf({ kind: 'vae', vaeId: model.meta.id }), l, total + SPARE_CAPACITY);
  const request = (start: number): Promise<Float32Array> => {
    const count = Math.min(ENCODE_CHUNK, total - start);
    const reply = encoder.encode(features.subarray(start * d, (start + count) * d), count);
    // Left unawaited when the build stops early; its rejection (the worker closed) is not news then.
    reply.catch(() => undefined);
    return reply;
  };
  options.onProgress(0, total);
  let next = total > 0 ? request(0) : undefined;
  for (let start = 0; start < total; start += ENCODE_CHUNK) {
    const latent = await next!;
    if (options.signal.aborted) throw cancelled();
    next = start + ENCODE_CHUNK < total ? request(start + ENCODE_CHUNK) : undefined;
    const count = Math.min(ENCODE_CHUNK, total - start);
    for (let i = 0; i < count; i++) {
      index.add(ids[start + i], latent.subarray(i * l, (i + 1) * l));
      if ((i + 1) % INSERT_BATCH === 0 || i === count - 1) {
        await setImmediate();
        if (options.signal.aborted) throw cancelled();
      }
    }
    options.onProgress(start + count, total);
  }
  if (options.signal.aborted) throw cancelled();
  return index;
}
