import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { loadDataset, parseManifest } from '../src/eval/dataset.js';
import { evaluateRelevance } from '../src/eval/evaluate.js';
import { labelIds, rankOfOriginals, scoreNeighbours } from '../src/eval/metrics.js';
import { fitPca, jacobiEigen, projectPca } from '../src/ml/pca.js';
import { seededShuffle } from '../src/util/random.js';
import { chartSpec, markdownReport, renderChartPng } from '../src/eval/report.js';
import { dHash, hammingDistance } from '../src/ml/transforms.js';
import { cosineNeighbours } from '../src/index/quality-gate.js';
import { createFeatureExtractor } from '../src/ml/features.js';
import { referencePhotoPaths } from './helpers/fixtures.js';
import { tempDir } from './helpers/temp-dir.js';

test('P@k, AP@k and coarse P@k on a hand-made ranking', () => {
  // Labels a a a b b; coarse x x y y y. Row 0 ranks [1, 3] (hit, miss), row 3 ranks [0, 4] (miss, hit).
  const labels = labelIds(['a', 'a', 'a', 'b', 'b']);
  const coarse = labelIds(['x', 'x', 'y', 'y', 'y']);
  const neighbours = Int32Array.from([1, 3, 0, 2, 0, 1, 0, 4, 3, 2]);
  const s = scoreNeighbours(neighbours, 5, 2, labels, coarse);
  // Hits per row: 1, 2, 2, 1, 1 of 2 → P@2 = 7/10.
  assert.equal(s.precision, 0.7);
  // AP@2: row0 1/min(2, 2), row1 (1 + 1)/2, row2 1, row3 (1/2)/min(2, 1), row4 1/1 → (0.5 + 1 + 1 + 0.5 + 1) / 5.
  assert.equal(s.map, 0.8);
  // Coarse hits: row0 x,y → 1; row1 x,y → 1; row2 x,x → 0; row3 x,y → 1; row4 y,y → 2.
  assert.equal(s.coarsePrecision, 5 / 10);
});

test('cosine neighbours ignore length and exclude the query itself', () => {
  const v = Float32Array.from([1, 0, 10, 1, 0, 1, 5, 0]);
  assert.deepEqual([...cosineNeighbours(v, 4, 2, 1)], [3, 0, 1, 0]);
});

test('rank of the original counts strictly better database rows', () => {
  // Query 0 ties with row 2 (the tie goes to the original): rank 1. Query 1 has row 1 above its original: rank 2.
  const sims = Float32Array.from([0.9, 0.5, 0.9, 0.1, 0.8, 0.7]);
  assert.deepEqual(rankOfOriginals(sims, 2, 3, Int32Array.from([0, 2])), { recallAt1: 0.5, meanRank: 1.5 });
});

test('PCA recovers the axes of an elongated cloud', () => {
  const { values } = jacobiEigen(Float64Array.from([2, 1, 0, 1, 2, 0, 0, 0, 5]), 3);
  assert.deepEqual([...values].map((v) => Math.round(v * 1e9) / 1e9).sort(), [1, 3, 5]);
  const n = 400;
  const x = new Float32Array(n * 3);
  const shuffled = seededShuffle(Array.from({ length: n }, (_, i) => i - n / 2), 3);
  for (let i = 0; i < n; i++) {
    x[i * 3] = 10;
    x[i * 3 + 1] = shuffled[i] / 40;
    x[i * 3 + 2] = (i % 2) - 0.5;
  }
  const pca = fitPca(x, n, 3, 1);
  assert.ok(Math.abs(pca.axes[1]) > 0.99, `axis ${[...pca.axes]}`);
  const whitened = projectPca(pca, x, n, true);
  const variance = whitened.reduce((s, v) => s + v * v, 0) / n;
  assert.ok(Math.abs(variance - 1) < 1e-3, `variance ${variance}`);
});

test('manifest lines become labelled paths; a missing coarse label falls back to the label', () => {
  const images = parseManifest('a/1.png\tcat\tanimal\n\n# note\nb/2.png\tmug\n', '/data');
  assert.deepEqual(images, [
    { path: '/data/a/1.png', label: 'cat', coarse: 'animal' },
    { path: '/data/b/2.png', label: 'mug', coarse: 'mug' },
  ]);
  assert.throws(() => parseManifest('only-a-path.png\n', '/data'), /needs a path and a label/);
});

test('dHash: identical for a re-encode, far for a mirror image', async () => {
  const [photo] = await referencePhotoPaths();
  const original = await sharp(photo).png().toBuffer();
  const reencoded = await sharp(photo).jpeg({ quality: 90 }).toBuffer();
  const mirrored = await sharp(photo).flop().png().toBuffer();
  const h = await dHash(original);
  assert.ok(hammingDistance(h, await dHash(reencoded)) <= 4);
  assert.ok(hammingDistance(h, await dHash(mirrored)) > 16);
});

test('a quick evaluation of the reference photos writes every part of the report', async () => {
  const dir = await tempDir();
  const photos = await referencePhotoPaths();
  // Two made-up classes and one unreadable file, which must be reported, not fatal.
  await writeFile(join(dir, 'broken.png'), 'not an image');
  const manifest = photos.map((p, i) => `${p}\t${i % 2 ? 'odd' : 'even'}\tall`).join('\n') + `\nbroken.png\teven\tall\n`;
  await writeFile(join(dir, 'manifest.tsv'), manifest);
  const dataset = await loadDataset(dir);
  const extractor = await createFeatureExtractor();
  try {
    const report = await evaluateRelevance(dataset, { extractor, cacheDir: join(dir, 'cache'), seed: 1, quick: true, fit: 'crop' });
    assert.equal(report.images, photos.length);
    assert.deepEqual(report.failures.map((f) => basename(f.path)), ['broken.png']);
    assert.deepEqual(report.keys.map((k) => k.key), ['raw-1280', 'pca-12', 'pca-12 whitened', 'dhash-64']);
    for (const key of report.keys) assert.ok(key.robustness!.recallAt1 >= 0 && key.robustness!.meanRank >= 1);
    // Flipped photos are still found first from their raw features.
    assert.ok(report.keys[0].robustness!.byTransform.flip.recallAt1 > 0.9);
    assert.equal(report.learningCurve.length, 0, 'too few images to train a VAE');
    const markdown = markdownReport(report);
    assert.match(markdown, /\| raw-1280 \| 5120 \|/);
    assert.match(markdown, /broken\.png/);
    const png = await renderChartPng(chartSpec(report));
    assert.equal((await sharp(png).metadata()).format, 'png');
    // The second run is served from the cache and gives the same numbers.
    const again = await evaluateRelevance(dataset, { extractor, cacheDir: join(dir, 'cache'), seed: 1, quick: true, fit: 'crop' });
    assert.deepEqual(again.keys, report.keys);
  } finally {
    await extractor.close();
  }
});
