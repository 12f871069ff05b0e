import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Worker } from 'node:worker_threads';
import { isAppError, type ErrorCode } from '../src/errors.js';
import { createFeatureExtractor, type FeatureExtractor } from '../src/ml/features.js';
import { defaultModelDir, readModelConfig } from '../src/ml/onnx-model.js';

const INPUT_LENGTH = 224 * 224 * 3;

/** A deterministic pseudo-image in [-1, 1]; different seeds give clearly different embeddings. */
function fakeImage(seed: number): Float32Array {
  const input = new Float32Array(INPUT_LENGTH);
  let state = seed * 7919 + 1;
  for (let i = 0; i < input.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    // Smooth-ish structure plus noise, so the network sees something other than white noise.
    input[i] = Math.max(-1, Math.min(1, Math.sin((i / 3 / 224) * (seed + 1) * 0.2) * 0.7 + (state / 2 ** 32 - 0.5) * 0.6));
  }
  return input;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isAppError(error, code), `expected ${code}, got ${String((error as Error)?.stack ?? error)}`);
    return true;
  });
}

describe('createFeatureExtractor', () => {
  let extractor: FeatureExtractor;

  before(async () => {
    extractor = await createFeatureExtractor({ maxBatch: 8 });
  });
  after(() => extractor?.close());

  it('reports the model version and dimension from model.json', () => {
    const config = readModelConfig(defaultModelDir());
    assert.equal(extractor.modelVersion, config.modelVersion);
    assert.equal(extractor.dim, 1280);
  });

  it('returns a 1280-d embedding and 1001 logits', async () => {
    const features = await extractor.extract(fakeImage(1));
    assert.ok(features instanceof Float32Array);
    assert.equal(features.length, 1280);
    // Post-RELU6 average pool.
    assert.ok(features.every((v) => v >= 0 && v <= 6));
    const both = await extractor.extractWithLogits(fakeImage(1));
    assert.equal(both.logits.length, 1001);
    assert.ok(maxAbsDiff(both.features, features) < 1e-5);
  });

  it('gives each concurrent caller its own result, whatever the batching', async () => {
    const seeds = Array.from({ length: 21 }, (_, i) => i + 10);
    const alone: Float32Array[] = [];
    for (const seed of seeds) alone.push(await extractor.extract(fakeImage(seed)));
    // 21 requests at once with maxBatch 8: batches of 8, 8 and 5, mixed with logits requests.
    const together = await Promise.all(
      seeds.map((seed, i) =>
        i % 3 === 0
          ? extractor.extractWithLogits(fakeImage(seed)).then((r) => r.features)
          : extractor.extract(fakeImage(seed)),
      ),
    );
    seeds.forEach((seed, i) => assert.ok(maxAbsDiff(together[i], alone[i]) < 1e-4, `seed ${seed}`));
    assert.ok(maxAbsDiff(alone[0], alone[1]) > 0.01, 'different inputs give different embeddings');
  });

  it('leaves the caller input untouched', async () => {
    const input = fakeImage(3);
    const copy = input.slice();
    await extractor.extract(input);
    assert.equal(input.length, INPUT_LENGTH);
    assert.deepEqual(input, copy);
  });

  it('rejects a wrongly sized tensor without disturbing other calls', async () => {
    const good = extractor.extract(fakeImage(4));
    await rejectsWith(extractor.extract(new Float32Array(100)), 'INFERENCE_FAILED');
    await rejectsWith(extractor.extract(new Uint8Array(INPUT_LENGTH) as unknown as Float32Array), 'INFERENCE_FAILED');
    assert.equal((await good).length, 1280);
  });

  it('rejects pending and later calls after close()', async () => {
    const own = await createFeatureExtractor();
    const pending = Promise.allSettled(Array.from({ length: 5 }, (_, i) => own.extract(fakeImage(i))));
    await own.close();
    for (const result of await pending) {
      assert.equal(result.status, 'rejected');
      assert.ok(isAppError(result.reason, 'INFERENCE_FAILED'));
    }
    await rejectsWith(own.extract(fakeImage(0)), 'INFERENCE_FAILED');
    await own.close();
  });

  it('replaces a worker that died while idle', async () => {
    const own = await createFeatureExtractor();
    try {
      assert.equal((await own.extract(fakeImage(1))).length, 1280);
      // Reaching into the private field is the only way to kill the worker from outside, as a crash would.
      const { worker } = own as unknown as { worker: Worker };
      await worker.terminate();
      const again = await Promise.all([own.extract(fakeImage(2)), own.extract(fakeImage(3))]);
      assert.deepEqual(again.map((f) => f.length), [1280, 1280]);
      assert.notEqual((own as unknown as { worker: Worker }).worker, worker);
    } finally {
      await own.close();
    }
  });

  it('validates its options', async () => {
    await rejectsWith(createFeatureExtractor({ threads: 0 }), 'CONFIG_INVALID');
    await rejectsWith(createFeatureExtractor({ maxBatch: 1.5 }), 'CONFIG_INVALID');
  });

  it('does not keep the process alive when idle', async () => {
    // A script that forgets close(): it must still exit on its own.
    const script = `
      import { createFeatureExtractor } from ${JSON.stringify(new URL('../src/ml/features.js', import.meta.url).href)};
      const e = await createFeatureExtractor();
      const f = await e.extract(new Float32Array(${INPUT_LENGTH}));
      console.log(f.length);
    `;
    const dir = await mkdtemp(join(tmpdir(), 'dir-idle-'));
    try {
      await writeFile(join(dir, 'idle.mjs'), script);
      const { stdout } = await promisify(execFile)(process.execPath, [join(dir, 'idle.mjs')], { timeout: 30_000 });
      assert.equal(stdout.trim(), '1280');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('model loading errors', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dir-model-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function modelCopy(name: string): Promise<string> {
    const target = join(dir, name);
    await cp(defaultModelDir(), target, { recursive: true });
    return target;
  }

  it('MODEL_MISSING when the directory or the model file is absent', async () => {
    await rejectsWith(createFeatureExtractor({ modelDir: join(dir, 'nowhere') }), 'MODEL_MISSING');
    const target = await modelCopy('no-onnx');
    await rm(join(target, 'model.onnx'));
    await rejectsWith(createFeatureExtractor({ modelDir: target }), 'MODEL_MISSING');
  });

  it('MODEL_INVALID when the file does not match the recorded sha256', async () => {
    const target = await modelCopy('tampered');
    const bytes = await readFile(join(target, 'model.onnx'));
    bytes[bytes.length - 100] ^= 1;
    await writeFile(join(target, 'model.onnx'), bytes);
    await rejectsWith(createFeatureExtractor({ modelDir: target }), 'MODEL_INVALID');
  });

  it('MODEL_INVALID when model.json is unreadable or describes another input', async () => {
    const garbled = await modelCopy('garbled');
    await writeFile(join(garbled, 'model.json'), '{ not json');
    await rejectsWith(createFeatureExtractor({ modelDir: garbled }), 'MODEL_INVALID');

    const other = await modelCopy('other-input');
    const config = JSON.parse(await readFile(join(other, 'model.json'), 'utf8'));
    config.input.size = 299;
    await writeFile(join(other, 'model.json'), JSON.stringify(config));
    await rejectsWith(createFeatureExtractor({ modelDir: other }), 'MODEL_INVALID');
  });

  it('MODEL_INVALID, without crashing, when the checksum matches but ONNX Runtime cannot load the file', async () => {
    const target = await modelCopy('not-onnx');
    const junk = Buffer.from('this is not an ONNX model');
    await writeFile(join(target, 'model.onnx'), junk);
    const config = JSON.parse(await readFile(join(target, 'model.json'), 'utf8'));
    config.sha256 = createHash('sha256').update(junk).digest('hex');
    await writeFile(join(target, 'model.json'), JSON.stringify(config));
    await rejectsWith(createFeatureExtractor({ modelDir: target }), 'MODEL_INVALID');
  });

  it('MODEL_INVALID when the outputs are not the declared shape', async () => {
    const target = await modelCopy('wrong-dim');
    const config = JSON.parse(await readFile(join(target, 'model.json'), 'utf8'));
    config.outputs.features.dim = 1000;
    await writeFile(join(target, 'model.json'), JSON.stringify(config));
    await rejectsWith(createFeatureExtractor({ modelDir: target }), 'MODEL_INVALID');
  });
});
