import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAppError } from '../src/errors.js';
import { VaeEncoderWorker } from '../src/ml/vae-encoder-client.js';
import { trainVae } from '../src/ml/vae-train.js';
import { FEATURE_DIM, syntheticFeatures } from './helpers/synthetic-features.js';

const DIM = FEATURE_DIM;
const N = 700;

const data = syntheticFeatures(N, 5);
const model = trainVae(data, N, { hidden: 128, latent: 16, epochs: 2, batchSize: 64, seed: 3 });

test('the encoding worker gives what VaeModel.encode gives, for chunks of any size, in order', async () => {
  const vae = await model;
  const l = vae.meta.latentDim;
  const expected = vae.encode(data, N);
  const encoder = VaeEncoderWorker.start(vae);
  try {
    // Queued together, so several requests wait while the worker still loads tfjs.
    const sizes = [1, 300, 399];
    let start = 0;
    const replies = sizes.map((count) => {
      const reply = encoder.encode(data.subarray(start * DIM, (start + count) * DIM), count);
      start += count;
      return reply;
    });
    const got = new Float32Array(N * l);
    let offset = 0;
    for (const reply of await Promise.all(replies)) {
      got.set(reply, offset);
      offset += reply.length;
    }
    assert.equal(offset, N * l);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]) / Math.max(1, Math.abs(expected[i])));
    assert.ok(worst <= 1e-4, `largest relative difference ${worst}`);
  } finally {
    await encoder.close();
  }
});

test('a bad request fails alone; after close every request fails with INFERENCE_FAILED', async () => {
  const vae = await model;
  const encoder = VaeEncoderWorker.start(vae);
  await assert.rejects(encoder.encode(data.subarray(0, 10), 1), (error) => isAppError(error, 'INFERENCE_FAILED') && /wrong size/.test(error.message));
  assert.equal((await encoder.encode(data.subarray(0, 2 * DIM), 2)).length, 2 * vae.meta.latentDim);
  const pending = assert.rejects(encoder.encode(data, N), (error) => isAppError(error, 'INFERENCE_FAILED'));
  await encoder.close();
  await pending;
  await assert.rejects(encoder.encode(data, 1), (error) => isAppError(error, 'INFERENCE_FAILED'));
});
