import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { isAppError } from '../src/errors.js';
import { VectorIndex, indexPaths } from '../src/index/vector-index.js';
import { tempDir } from './helpers/temp-dir.js';

function vector(seed: number, dim = 16): Float32Array {
  const v = new Float32Array(dim);
  for (let i = 0; i < dim; i++) v[i] = Math.sin(seed * 12.9898 + i * 78.233) + 1.1;
  return v;
}

test('search finds the nearest vector first and skips filtered and deleted ids', () => {
  const index = VectorIndex.create('raw', 16, 4);
  for (let id = 1; id <= 50; id++) index.add(id, vector(id));
  assert.equal(index.size, 50);
  const hits = index.search(vector(7), 5);
  assert.equal(hits[0].id, 7);
  assert.ok(Math.abs(hits[0].score - 1) < 1e-5);
  assert.ok(!index.search(vector(7), 5, (id) => id !== 7).some((h) => h.id === 7));
  index.remove(7);
  assert.equal(index.size, 49);
  assert.ok(!index.search(vector(7), 5).some((h) => h.id === 7));
  assert.equal(index.search(vector(7), 100).length, 49);
});

test('an index saved and loaded again answers the same, deletions included', async () => {
  const dir = await tempDir();
  const index = VectorIndex.create('raw', 16);
  for (let id = 1; id <= 30; id++) index.add(id, vector(id));
  index.remove(3);
  await index.save(dir);
  const loaded = await VectorIndex.load(dir, 'raw');
  assert.ok(loaded);
  assert.equal(loaded.size, 29);
  assert.deepEqual(loaded.search(vector(11), 3), index.search(vector(11), 3));
  assert.ok(!loaded.ids().includes(3));
  assert.equal(await VectorIndex.load(dir, 'vae-other'), null);
});

test('a same-size corruption of the file body is refused before hnswlib reads it', async () => {
  const dir = await tempDir();
  const index = VectorIndex.create('raw', 16);
  for (let id = 1; id <= 30; id++) index.add(id, vector(id));
  await index.save(dir);
  const { data } = indexPaths(dir, 'raw');
  const bytes = await readFile(data);
  const before = (await stat(data)).size;
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  await writeFile(data, bytes);
  assert.equal((await stat(data)).size, before);
  await assert.rejects(VectorIndex.load(dir, 'raw'), (error) => isAppError(error, 'INDEX_CORRUPT'));
});

test('a re-added deleted id comes back', () => {
  const index = VectorIndex.create('raw', 16);
  for (let id = 1; id <= 10; id++) index.add(id, vector(id));
  index.remove(4);
  index.add(4, vector(4));
  assert.equal(index.size, 10);
  assert.equal(index.search(vector(4), 1)[0].id, 4);
});
