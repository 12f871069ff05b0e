import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { isAppError } from '../src/errors.js';
import { FeatureStore } from '../src/index/store.js';
import { tempDir } from './helpers/temp-dir.js';

function features(seed: number): Float32Array {
  return Float32Array.from({ length: 1280 }, (_, i) => Math.abs(Math.sin(seed + i)) * 6);
}

const base = { source: 'a.png', width: 10, height: 20, addedAt: '2026-01-01T00:00:00.000Z' };

test('records survive closing and reopening the SQLite file, features to half precision', async () => {
  const path = join(await tempDir(), 'store.sqlite');
  const store = await FeatureStore.open(path);
  const first = await store.exclusive(() => store.insert({ ...base, sha256: 'aa' }, features(1)));
  const second = await store.exclusive(() => store.insert({ ...base, sha256: 'bb', extra: { channel: '42' } }, features(2)));
  assert.deepEqual([first.id, second.id], [1, 2]);
  await store.close();

  const reopened = await FeatureStore.open(path);
  assert.equal(await reopened.count(), 2);
  assert.equal(await reopened.findBySha('bb'), 2);
  const image = await reopened.get(2);
  assert.ok(image);
  assert.equal(image.extra?.channel, '42');
  const expected = features(2);
  for (let i = 0; i < 1280; i++) assert.ok(Math.abs(image.features[i] - expected[i]) <= 0.004, `feature ${i}`);
  const third = await reopened.exclusive(() => reopened.insert({ ...base, sha256: 'cc' }, features(3)));
  assert.equal(third.id, 3, 'ids are never reused');
  await reopened.close();
});

test('delete removes the record and its duplicate key; scan pages through everything', async () => {
  const store = await FeatureStore.open(join(await tempDir(), 'store.sqlite'));
  for (let i = 0; i < 1203; i++) await store.exclusive(() => store.insert({ ...base, sha256: `h${i}` }, features(i)));
  const removed = await store.exclusive(() => store.delete(5));
  assert.equal(removed?.sha256, 'h4');
  assert.equal(await store.findBySha('h4'), undefined);
  assert.equal(await store.get(5), undefined);
  assert.equal(await store.exclusive(() => store.delete(5)), undefined);
  const ids: number[] = [];
  for await (const image of store.scan()) ids.push(image.id);
  assert.equal(ids.length, 1202);
  assert.equal(new Set(ids).size, 1202);
  assert.equal(await store.count(), 1202);
  assert.deepEqual((await store.ids()).sort((a, b) => a - b), [...ids].sort((a, b) => a - b));
  const records = await store.getRecords([1, 5, 1203]);
  assert.deepEqual([...records.keys()].sort((a, b) => a - b), [1, 1203]);
  await store.close();
});

test('loadFeatures returns every stored row in scan order as one matrix, and refuses rows of another width', async () => {
  const store = await FeatureStore.open(join(await tempDir(), 'store.sqlite'));
  // A source starting with ':' is one keyv escapes: the direct decode must still read the row.
  for (let i = 0; i < 1203; i++) await store.exclusive(() => store.insert({ ...base, source: i % 2 ? ':odd.png' : 'even.png', sha256: `h${i}` }, features(i)));
  await store.exclusive(() => store.delete(7));
  const matrix = await store.loadFeatures(1280);
  const scanned: Array<{ id: number; features: Float32Array }> = [];
  for await (const image of store.scan()) scanned.push(image);
  assert.deepEqual(matrix.ids, scanned.map((image) => image.id));
  assert.equal(matrix.features.length, 1202 * 1280);
  scanned.forEach((image, row) => assert.deepEqual(matrix.features.subarray(row * 1280, (row + 1) * 1280), image.features, `row ${row}`));
  await assert.rejects(store.loadFeatures(64), (error) => isAppError(error, 'STORE_FAILED') && /1280 features where 64/.test(error.message));
  await store.close();
});
