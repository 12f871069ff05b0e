/**
 * Worker-thread entry for an index build (build-index.ts): decodes the float16 feature pages the parent streams to
 * it, keys them (μ of the VAE, in tfjs, or the raw features), inserts them into a fresh HNSW graph and saves the
 * index (vector-index.ts, checksummed) to the namespace's folder for the parent to load once this worker has exited
 * and its memory is freed. A style build first fits the posters' offsets on every key, so it keeps the keys (or,
 * for raw features, the float16 pages) until the last page and inserts them then. Started by build-index.ts, never
 * imported elsewhere.
 */
import { parentPort } from 'node:worker_threads';
import { loadBulkEncoder } from '../ml/vae-bulk-encoder.js';
import { decodeFloat16Into } from '../util/float16.js';
import { serveWorkerTask } from '../util/worker-task.js';
import type { BuildIndexInput, BuildIndexMessage, BuildIndexProgress, BuildIndexResult } from './build-index.js';
import { StyleFit, withStyle } from './style-key.js';
import { IndexBuilder } from './vector-index.js';

/** A page a style build keeps until its offsets are fitted: its keys, or its float16 features to key again. */
type HeldPage = { ids: number[]; posters: Array<string | null>; keys?: Float32Array; f16?: Uint8Array };

await serveWorkerTask<BuildIndexInput, BuildIndexResult>('TRAINING_FAILED', (input) => {
  const port = parentPort!;
  const encoder = input.vae && loadBulkEncoder(input.vae.meta, input.vae.weights);
  const d = input.featureDim;
  const dim = input.vae ? input.vae.meta.latentDim : d;
  const index = new IndexBuilder(input.keyId, dim, input.capacity);
  const fit = input.styleId === undefined ? undefined : new StyleFit(dim);
  const held: HeldPage[] = [];
  let done = 0;
  const keysOf = async (f16: Uint8Array, count: number): Promise<Float32Array> => {
    const features = new Float32Array(count * d);
    decodeFloat16Into(f16, count * d, features, 0);
    return encoder ? (await encoder).encode(features, count) : features;
  };
  const insert = (ids: number[], keys: Float32Array, keyOf: (key: Float32Array, row: number) => Float32Array = (key) => key): void => {
    for (let i = 0; i < ids.length; i++) index.add(ids[i], keyOf(keys.subarray(i * dim, (i + 1) * dim), i));
  };
  // Pages arrive while tfjs loads and while the previous page is inserted: they are taken in order.
  let queue: Promise<unknown> = Promise.resolve();
  return new Promise((resolve, reject) => {
    port.on('message', (message: BuildIndexMessage) => {
      queue = queue
        .then(async () => {
          if (message.type === 'end') {
            const style = fit?.finish(input.styleId!);
            // Each page is let go once inserted: a raw build's float16 pages are 256 MB at STYLE_MAX_IMAGES.
            for (let page = held.shift(); page; page = held.shift()) {
              const keys = page.keys ?? (await keysOf(page.f16!, page.ids.length));
              insert(page.ids, keys, (key, row) => withStyle(key, page.posters[row] ?? undefined, style));
            }
            const size = index.size;
            await index.save(input.dir, { storeNextId: input.storeNextId });
            resolve({ result: { size, ...(style ? { style } : {}) } });
            return;
          }
          const count = message.ids.length;
          const keys = await keysOf(message.f16, count);
          if (fit) {
            const posters = message.posters!;
            for (let i = 0; i < count; i++) fit.add(posters[i] ?? undefined, keys.subarray(i * dim, (i + 1) * dim));
            // Raw features are kept as the float16 they came in, half the size of their keys.
            held.push({ ids: message.ids, posters, ...(encoder ? { keys } : { f16: message.f16 }) });
          } else {
            insert(message.ids, keys);
          }
          done += count;
          port.postMessage({ type: 'progress', done } satisfies BuildIndexProgress);
        })
        .catch(reject);
    });
  });
});
