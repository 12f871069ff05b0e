import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isAppError } from '../src/errors.js';
import { buildIndex } from '../src/index/build-index.js';
import { createEngine, namespaceDir } from '../src/index/engine.js';
import { splitForRetrain, splitFromPages } from '../src/index/retrain-split.js';
import { FeatureStore } from '../src/index/store.js';
import { indexFiles } from '../src/index/vector-index.js';
import type { FeaturePage } from '../src/index/feature-blobs.js';
import { decodeFloat16, encodeFloat16 } from '../src/util/float16.js';
import { trainVae } from '../src/ml/vae-train.js';
import { FEATURE_DIM, syntheticFeatures } from './helpers/synthetic-features.js';
import { tempDir } from './helpers/temp-dir.js';

/** Three chunks of the encoding worker (1,000 rows each), the last one partial. */
const N = 2_600;
const TINY = { hidden: 32, latent: 8, epochs: 2, seed: 4 };

const data = syntheticFeatures(N, 9);
const ids = Array.from({ length: N }, (_, i) => 10 * i + 3);
const model = trainVae(data.subarray(0, 500 * FEATURE_DIM), 500, TINY);

/** The store's form of `data`: float16 pages of 1,000 rows (the store's own pages hold ≤ 512). */
async function* pages(): AsyncGenerator<FeaturePage> {
  for (let start = 0; start < N; start += 1000) {
    const count = Math.min(1000, N - start);
    yield { ids: ids.slice(start, start + count), width: FEATURE_DIM * 2, f16: encodeFloat16(data.subarray(start * FEATURE_DIM, (start + count) * FEATURE_DIM)) };
  }
}

test('buildIndex puts every row under its id, keyed on the model’s μ, saved and loaded back', async () => {
  const vae = await model;
  const dir = await tempDir();
  const progress: number[] = [];
  const index = await buildIndex(vae, pages(), { dir, total: N, signal: new AbortController().signal, onProgress: (done) => progress.push(done) });
  assert.equal(index.size, N);
  assert.equal(index.keyId, `vae-${vae.meta.id}`);
  assert.deepEqual(progress, [0, 1000, 2000, N]);
  assert.deepEqual((await index.ready()).state, 'loaded', 'the graph the worker built is read, not rebuilt');
  for (const row of [0, 999, 1000, N - 1]) {
    const stored = decodeFloat16(encodeFloat16(data.subarray(row * FEATURE_DIM, (row + 1) * FEATURE_DIM)));
    const [best] = index.search(vae.encode(stored, 1), 1);
    assert.equal(best.id, ids[row]);
    assert.ok(best.score > 0.9999, `row ${row}: cosine ${best.score}`);
  }
});

test('aborting while the index is built rejects with TRAINING_CANCELLED and leaves no index files', async () => {
  const vae = await model;
  const dir = await tempDir();
  const controller = new AbortController();
  const progress: number[] = [];
  const building = buildIndex(vae, pages(), {
    dir,
    total: N,
    signal: controller.signal,
    onProgress: (done) => {
      progress.push(done);
      if (done >= 1000) controller.abort();
    },
  });
  await assert.rejects(building, (error) => isAppError(error, 'TRAINING_CANCELLED'));
  assert.deepEqual(progress, [0, 1000]);
  assert.deepEqual((await readdir(dir)).filter((name) => name.startsWith('index-')), []);
});

/** A data dir whose namespace `local` stores the N synthetic rows. */
async function syntheticCollection(): Promise<string> {
  const dataDir = await tempDir();
  const store = await FeatureStore.open(join(namespaceDir(dataDir, 'local'), 'store.sqlite'));
  for (let i = 0; i < N; i++) {
    const record = { sha256: `sha-${i}`, source: `synthetic/${i}.png`, width: 1, height: 1, addedAt: new Date(0).toISOString() };
    await store.exclusive(() => store.insert(record, data.subarray(i * FEATURE_DIM, (i + 1) * FEATURE_DIM)));
  }
  await store.close();
  return dataDir;
}

test('a retrain cancelled while encoding leaves the old key active, and the next one completes', async () => {
  const dataDir = await syntheticCollection();
  const engine = createEngine({ dataDir, retrainPolicy: false, vaeHyper: TINY });
  try {
    const controller = new AbortController();
    const phases: string[] = [];
    const retrain = engine.retrain({
      force: true,
      signal: controller.signal,
      onProgress: (p) => {
        if (phases.at(-1) !== p.phase) phases.push(p.phase);
        if (p.phase === 'encoding' && (p.done ?? 0) >= 1000) controller.abort();
      },
    });
    await assert.rejects(retrain, (error) => isAppError(error, 'TRAINING_CANCELLED'));
    assert.deepEqual(phases, ['loading', 'training', 'checking', 'encoding']);
    assert.equal((await engine.stats()).key, 'raw');

    const done = await engine.retrain({ force: true });
    assert.equal(done.swapped, true);
    const stats = await engine.stats();
    assert.equal(stats.key, done.key);
    assert.equal(stats.indexed, N);
    const hits = await engine.query({ id: 1 }, { k: 3 });
    assert.equal(hits.hits.length, 3);
  } finally {
    await engine.close();
  }
});

test('the swap keeps the index the worker saved when nothing changed meanwhile, and saves it later (not under the lock) when the store did', async () => {
  const dataDir = await syntheticCollection();
  const engine = createEngine({ dataDir, retrainPolicy: false, vaeHyper: TINY });
  const savedAt = async (key: string) => Date.parse(JSON.parse(await readFile((await indexFiles(namespaceDir(dataDir, 'local'), key)).manifest, 'utf8')).savedAt);
  let swapAt = 0;
  let doneAt = 0;
  let busyKey = '';
  try {
    const quiet = await engine.retrain({ force: true, onProgress: (p) => void (p.phase === 'swapping' && !swapAt && (swapAt = Date.now())) });
    assert.ok((await savedAt(quiet.key)) < swapAt, 'saved by the worker before the swap, not again under the lock');

    // An image removed once the worker holds it: the index at the swap is no longer the one saved.
    swapAt = 0;
    let removal: Promise<unknown> | undefined;
    const busy = await engine.retrain({
      force: true,
      onProgress: (p) => {
        if (p.phase === 'encoding' && (p.done ?? 0) >= 1000 && !removal) removal = engine.remove(1);
        if (p.phase === 'swapping' && !swapAt) swapAt = Date.now();
      },
    });
    await removal;
    busyKey = busy.key;
    doneAt = Date.now();
    assert.ok((await savedAt(busyKey)) < swapAt, 'not saved under the lock at the swap');
  } finally {
    await engine.close();
  }
  assert.ok((await savedAt(busyKey)) >= doneAt, 'saved again after the swap (here by close, else by the save timer)');
  const reopened = createEngine({ dataDir, retrainPolicy: false });
  try {
    assert.equal((await reopened.stats()).indexed, N - 1);
  } finally {
    await reopened.close();
  }
});

test('the streamed split keeps the rows splitForRetrain picks from the whole matrix, and only those', async () => {
  const stored = decodeFloat16(encodeFloat16(data));
  const whole = splitForRetrain(stored, N, FEATURE_DIM);
  const streamed = await splitFromPages(pages(), N, FEATURE_DIM);
  assert.equal(streamed.heldCount, whole.heldCount);
  assert.equal(streamed.trainingCount, whole.trainingCount);
  assert.deepEqual(streamed.heldIds, Array.from(whole.heldRows, (row) => ids[row]));
  // The learned whitening's thumbnails are read by these ids: each must be the id of its training row.
  assert.deepEqual(streamed.trainingIds, Array.from(whole.trainingRows, (row) => ids[row]));
  assert.deepEqual(streamed.heldOut, whole.heldOut);
  assert.deepEqual(streamed.training, whole.training);
  // Counted before images were removed: the slices hold the rows that came, no empty ones.
  const short = await splitFromPages(pages(), N + 400, FEATURE_DIM);
  assert.equal(short.heldOut.length, short.heldCount * FEATURE_DIM);
  assert.equal(short.training.length, short.trainingCount * FEATURE_DIM);
  assert.ok(short.heldCount + short.trainingCount <= N);
});
