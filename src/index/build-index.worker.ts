/**
 * Worker-thread entry for a retrain's index build: decodes the float16 feature pages the parent streams to it,
 * encodes them with the new VAE (tfjs), inserts them into a fresh HNSW graph and saves the index (vector-index.ts,
 * checksummed) to the namespace's folder for the parent to load once this worker has exited and its memory is
 * freed. Started by build-index.ts, never imported elsewhere.
 */
import { parentPort } from 'node:worker_threads';
import { loadBulkEncoder } from '../ml/vae-bulk-encoder.js';
import { decodeFloat16Into } from '../util/float16.js';
import { serveWorkerTask } from '../util/worker-task.js';
import type { BuildIndexInput, BuildIndexMessage, BuildIndexProgress } from './build-index.js';
import { IndexBuilder } from './vector-index.js';

await serveWorkerTask<BuildIndexInput, { size: number }>('TRAINING_FAILED', (input) => {
  const port = parentPort!;
  const encoder = loadBulkEncoder(input.meta, input.weights);
  const { inputDim: d, latentDim: l } = input.meta;
  const index = new IndexBuilder(input.keyId, l, input.capacity);
  let done = 0;
  // Pages arrive while tfjs loads and while the previous page is inserted: they are taken in order.
  let queue: Promise<unknown> = Promise.resolve();
  return new Promise((resolve, reject) => {
    port.on('message', (message: BuildIndexMessage) => {
      queue = queue
        .then(async () => {
          if (message.type === 'end') {
            const size = index.size;
            await index.save(input.dir, { storeNextId: input.storeNextId });
            resolve({ result: { size } });
            return;
          }
          const count = message.ids.length;
          const features = new Float32Array(count * d);
          decodeFloat16Into(message.f16, count * d, features, 0);
          const mu = (await encoder).encode(features, count);
          for (let i = 0; i < count; i++) index.add(message.ids[i], mu.subarray(i * l, (i + 1) * l));
          done += count;
          port.postMessage({ type: 'progress', done } satisfies BuildIndexProgress);
        })
        .catch(reject);
    });
  });
});
