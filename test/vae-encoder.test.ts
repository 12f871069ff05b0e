import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAppError } from '../src/errors.js';
import { loadBulkEncoder } from '../src/ml/vae-bulk-encoder.js';
import { trainVae } from '../src/ml/vae-train.js';
import { FEATURE_DIM, syntheticFeatures } from './helpers/synthetic-features.js';

const DIM = FEATURE_DIM;
const N = 700;

const data = syntheticFeatures(N, 5);
const model = trainVae(data, N, { hidden: 128, latent: 16, epochs: 2, batchSize: 64, seed: 3 });

test('the bulk encoder gives what VaeModel.encode gives, for chunks of any size', async () => {
  const vae = await model;
  const l = vae.meta.latentDim;
  const expected = vae.encode(data, N);
  const encoder = await loadBulkEncoder(vae.meta, vae.weights);
  const got = new Float32Array(N * l);
  let start = 0;
  for (const count of [1, 300, 399]) {
    got.set(encoder.encode(data.subarray(start * DIM, (start + count) * DIM), count), start * l);
    start += count;
  }
  assert.equal(start, N);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]) / Math.max(1, Math.abs(expected[i])));
  assert.ok(worst <= 1e-4, `largest relative difference ${worst}`);
});

test('rows of the wrong size fail with INFERENCE_FAILED, and the encoder still works after', async () => {
  const vae = await model;
  const encoder = await loadBulkEncoder(vae.meta, vae.weights);
  assert.throws(() => encoder.encode(data.subarray(0, 10), 1), (error) => isAppError(error, 'INFERENCE_FAILED') && /wrong size/.test(error.message));
  assert.equal(encoder.encode(data.subarray(0, 2 * DIM), 2).length, 2 * vae.meta.latentDim);
});
