import assert from 'node:assert/strict';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isAppError } from '../src/errors.js';
import { sha256 } from '../src/util/atomic-file.js';
import { IndexBuilder, LARGE_INDEX, VectorIndex, indexFiles } from '../src/index/vector-index.js';
import { tempDir } from './helpers/temp-dir.js';

function vector(seed: number, dim = 16): Float32Array {
  const v = new Float32Array(dim);
  for (let i = 0; i < dim; i++) v[i] = Math.sin(seed * 12.9898 + i * 78.233) + 1.1;
  return v;
}

test('search finds the nearest vector first and skips the excluded and deleted ids', () => {
  const index = VectorIndex.create('raw', 16, 4);
  for (let id = 1; id <= 50; id++) index.add(id, vector(id));
  assert.equal(index.size, 50);
  const hits = index.search(vector(7), 5);
  assert.equal(hits[0].id, 7);
  assert.ok(Math.abs(hits[0].score - 1) < 1e-5);
  assert.ok(!index.search(vector(7), 5, 7).some((h) => h.id === 7));
  assert.equal(index.search(vector(7), 5, 7).length, 5);
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
  assert.deepEqual(loaded.search(vector(11), 3).map((h) => h.id), index.search(vector(11), 3).map((h) => h.id), 'exact search first');
  await loaded.ready();
  assert.deepEqual(loaded.search(vector(11), 3), index.search(vector(11), 3));
  assert.ok(!loaded.ids().includes(3));
  assert.equal(await VectorIndex.load(dir, 'vae-other'), null);
});

test('a same-size corruption of the file body is refused before hnswlib reads it', async () => {
  const dir = await tempDir();
  const index = VectorIndex.create('raw', 16);
  for (let id = 1; id <= 30; id++) index.add(id, vector(id));
  await index.save(dir);
  const { graph, flat } = await indexFiles(dir, 'raw');
  for (const file of [graph!, flat!]) {
    const bytes = await readFile(file);
    const before = (await stat(file)).size;
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    await writeFile(file, bytes);
    assert.equal((await stat(file)).size, before);
  }
  await assert.rejects(VectorIndex.load(dir, 'raw'), (error) => isAppError(error, 'INDEX_CORRUPT'));
});

test('a graph file that does not verify is rebuilt from the vectors; searches meanwhile are exact', async () => {
  const dir = await tempDir();
  const index = VectorIndex.create('raw', 16);
  for (let id = 1; id <= 40; id++) index.add(id, vector(id));
  await index.save(dir);
  const { graph } = await indexFiles(dir, 'raw');
  const bytes = await readFile(graph!);
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  await writeFile(graph!, bytes);
  const loaded = (await VectorIndex.load(dir, 'raw'))!;
  assert.deepEqual(loaded.search(vector(9), 3).map((h) => h.id), index.search(vector(9), 3).map((h) => h.id));
  loaded.add(41, vector(41));
  loaded.remove(2);
  const status = await loaded.ready();
  assert.equal(status.state, 'rebuilt');
  assert.match(status.state === 'rebuilt' ? status.reason : '', /does not match its checksum/);
  assert.equal(loaded.search(vector(41), 1)[0].id, 41);
  assert.ok(!loaded.search(vector(2), 40).some((h) => h.id === 2));
  assert.equal(loaded.size, 40);
});

test('changes made while the graph loads are replayed onto it, and the exact search agrees with the graph', async () => {
  const dir = await tempDir();
  const index = VectorIndex.create('raw', 16);
  for (let id = 1; id <= 200; id++) index.add(id, vector(id));
  index.remove(5);
  await index.save(dir);
  const loaded = (await VectorIndex.load(dir, 'raw'))!;
  const exact = loaded.search(vector(33), 10, 33);
  loaded.add(201, vector(201));
  loaded.add(5, vector(5));
  loaded.remove(6);
  assert.deepEqual(await loaded.ready(), { state: 'loaded' });
  assert.deepEqual(loaded.search(vector(33), 10, 33).map((h) => h.id), exact.map((h) => h.id));
  assert.equal(loaded.search(vector(201), 1)[0].id, 201);
  assert.equal(loaded.search(vector(5), 1)[0].id, 5);
  assert.ok(!loaded.search(vector(6), 200).some((h) => h.id === 6));
  assert.equal(loaded.size, 200);
  await loaded.save(dir);
  const again = (await VectorIndex.load(dir, 'raw'))!;
  assert.deepEqual(await again.ready(), { state: 'loaded' });
  assert.deepEqual(again.ids().sort((a, b) => a - b), loaded.ids().sort((a, b) => a - b));
});

test('an index saved in the first format (one hnswlib file) still loads, with its deletions', async () => {
  const dir = await tempDir();
  const index = VectorIndex.create('raw', 16);
  for (let id = 1; id <= 30; id++) index.add(id, vector(id));
  index.remove(3);
  await index.save(dir);
  // What format 1 wrote: the graph under the key's name, deleted ids in the manifest.
  const { graph, flat, manifest } = await indexFiles(dir, 'raw');
  const legacyGraph = join(dir, 'index-raw.hnsw');
  await rename(graph!, legacyGraph);
  await rm(flat!);
  const data = await readFile(legacyGraph);
  await writeFile(manifest, JSON.stringify({ format: 1, keyId: 'raw', dim: 16, sha256: sha256(data), bytes: data.length, live: 29, deleted: [3], savedAt: '' }));
  const loaded = (await VectorIndex.load(dir, 'raw'))!;
  assert.equal(loaded.size, 29);
  assert.ok(!loaded.has(3));
  assert.deepEqual(loaded.search(vector(11), 3), index.search(vector(11), 3));
  await loaded.save(dir);
  assert.deepEqual((await readdir(dir)).filter((name) => name.endsWith('.hnsw')).length, 1, 'the first-format file is gone');
});

test('a re-added deleted id comes back', () => {
  const index = VectorIndex.create('raw', 16);
  for (let id = 1; id <= 10; id++) index.add(id, vector(id));
  index.remove(4);
  index.add(4, vector(4));
  assert.equal(index.size, 10);
  assert.equal(index.search(vector(4), 1)[0].id, 4);
});

test('an index saved empty loads and takes additions', async () => {
  const dir = await tempDir();
  await VectorIndex.create('raw', 16).save(dir);
  const loaded = (await VectorIndex.load(dir, 'raw'))!;
  await loaded.ready();
  for (let id = 1; id <= 20; id++) loaded.add(id, vector(id));
  assert.equal(loaded.search(vector(12), 1)[0].id, 12);
});

/** The efConstruction hnswlib wrote in a saved graph's header (a size_t after twelve other fields: 88 bytes in). */
async function savedEfConstruction(dir: string, keyId: string): Promise<number> {
  const bytes = await readFile((await indexFiles(dir, keyId)).graph!);
  return Number(bytes.readBigUInt64LE(88));
}

test('a graph built for more than LARGE_INDEX elements inserts with efConstruction 100, a smaller one with 200', async () => {
  const small = await tempDir();
  const index = VectorIndex.create('raw', 16, LARGE_INDEX);
  for (let id = 1; id <= 10; id++) index.add(id, vector(id));
  await index.save(small);
  assert.equal(await savedEfConstruction(small, 'raw'), 200);
  // A retrain's builder and a VectorIndex pick it alike: by the capacity they are made for.
  for (const build of [() => VectorIndex.create('raw', 16, LARGE_INDEX + 1), () => new IndexBuilder('raw', 16, LARGE_INDEX + 1)]) {
    const large = await tempDir();
    const built = build();
    for (let id = 1; id <= 10; id++) built.add(id, vector(id));
    await built.save(large);
    assert.equal(await savedEfConstruction(large, 'raw'), 100);
  }
});

test('an index saved by an IndexBuilder loads as the VectorIndex of the same additions, exact search and graph alike', async () => {
  const dir = await tempDir();
  const builder = new IndexBuilder('vae-x', 16, 8);
  const reference = VectorIndex.create('vae-x', 16, 8);
  // More than the capacity, ids out of order and one given twice (kept once, as VectorIndex does).
  const ids = Array.from({ length: 300 }, (_, i) => (i * 37) % 301);
  for (const id of [...ids, ids[5]]) {
    builder.add(id, vector(id));
    reference.add(id, vector(id));
  }
  assert.equal(builder.size, 300);
  await builder.save(dir, { storeNextId: 301 });
  const loaded = (await VectorIndex.load(dir, 'vae-x'))!;
  assert.equal(loaded.size, 300);
  assert.equal(loaded.storeNextId, 301);
  assert.deepEqual(loaded.ids().sort((a, b) => a - b), reference.ids().sort((a, b) => a - b));
  // hnswlib normalises in float32, the reference's flat vectors in float64: near-ties may swap, scores agree.
  const same = (what: string, id: number) => {
    const found = loaded.search(vector(id), 5, id);
    const expected = reference.search(vector(id), 5, id);
    assert.deepEqual(found.map((h) => h.id).sort(), expected.map((h) => h.id).sort(), `${what} for ${id}`);
    for (const [i, hit] of found.entries()) assert.ok(Math.abs(hit.score - expected[i].score) < 1e-5, `${what} for ${id}: scores`);
  };
  for (const id of [0, 37, 150, 299]) same('exact search', id);
  assert.deepEqual(await loaded.ready(), { state: 'loaded' });
  for (const id of [0, 37, 150, 299]) same('graph search', id);
});

test('a released index frees its graph and answers from its vectors', async () => {
  const dir = await tempDir();
  const index = VectorIndex.create('raw', 16);
  for (let id = 1; id <= 200; id++) index.add(id, vector(id));
  await index.save(dir);
  const loaded = (await VectorIndex.load(dir, 'raw'))!;
  await loaded.ready();
  const before = loaded.search(vector(33), 10, 33);
  loaded.release();
  await loaded.ready();
  // Let the release run: it waits for the graph, which is loaded.
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(loaded.search(vector(33), 10, 33).map((h) => h.id), before.map((h) => h.id));
  assert.equal(loaded.search(vector(77), 1)[0].id, 77);
});
