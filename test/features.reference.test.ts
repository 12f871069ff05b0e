// End-to-end check of preprocessing + converted model against the independent float32 reference (see
// test/fixtures/reference/ATTRIBUTION.md): same top-1 class and embedding cosine >= 0.99 on every photo.
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createFeatureExtractor, type FeatureExtractor } from '../src/ml/features.js';
import { preprocessImage } from '../src/ml/image.js';
import { cosine } from '../src/index/near-duplicates.js';
import { findPackageRoot } from '../src/ml/onnx-model.js';

interface Reference {
  photos: Record<string, { top5: { index: number; p: number }[]; features: number[] }>;
}

const FIXTURES = join(findPackageRoot(), 'test', 'fixtures', 'reference');
const MIN_COSINE = 0.99;

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

describe('MobileNetV2 against the reference embeddings', () => {
  let extractor: FeatureExtractor;
  let reference: Reference;

  before(async () => {
    reference = JSON.parse(await readFile(join(FIXTURES, 'reference_features.json'), 'utf8')) as Reference;
    extractor = await createFeatureExtractor();
  });
  after(() => extractor?.close());

  it('has all 13 photos', async () => {
    const photos = (await readdir(FIXTURES)).filter((f) => /\.(png|jpg)$/.test(f)).sort();
    assert.equal(photos.length, 13);
    assert.deepEqual(photos, Object.keys(reference.photos).sort());
  });

  it('matches top-1 class and embedding on every photo', async (t) => {
    const labelsFile = join(findPackageRoot(), 'models', 'mobilenet_v2', 'imagenet_labels_1001.txt');
    const labels = (await readFile(labelsFile, 'utf8')).split('\n');
    const results = await Promise.all(
      Object.entries(reference.photos).map(async ([name, expected]) => {
        const image = await preprocessImage(await readFile(join(FIXTURES, name)));
        const { features, logits } = await extractor.extractWithLogits(image.input);
        assert.equal(features.length, expected.features.length);
        return { name, cos: cosine(features, Float32Array.from(expected.features)), top1: argmax(logits), expected: expected.top5[0].index };
      }),
    );
    for (const r of results) {
      const label = labels[r.top1].split(',')[0];
      t.diagnostic(`${r.name.padEnd(28)} cos ${r.cos.toFixed(6)}  top-1 ${r.top1} ${label} (reference ${r.expected})`);
    }
    const minCos = Math.min(...results.map((r) => r.cos));
    const agree = results.filter((r) => r.top1 === r.expected).length;
    t.diagnostic(`min cosine ${minCos.toFixed(6)}, top-1 agreement ${agree}/${results.length}`);
    for (const r of results) {
      assert.equal(r.top1, r.expected, `${r.name}: top-1 ${r.top1} (${labels[r.top1]}), reference ${r.expected}`);
      assert.ok(r.cos >= MIN_COSINE, `${r.name}: cosine ${r.cos.toFixed(6)} < ${MIN_COSINE}`);
    }
  });

  it('tells different photos apart', async () => {
    // Guards against a degenerate model (e.g. a constant embedding) that would trivially "match" a broken reference.
    const [a, b] = await Promise.all(
      ['chelsea.png', 'rocket.jpg'].map(async (name) =>
        extractor.extract((await preprocessImage(await readFile(join(FIXTURES, name)))).input),
      ),
    );
    assert.ok(cosine(a, b) < 0.7, `chelsea vs rocket cosine ${cosine(a, b)}`);
  });
});
