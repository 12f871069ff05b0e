import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { isAppError } from '../src/errors.js';
import { pack, unpackInto } from '../src/index/feature-blobs.js';
import { FeatureStore } from '../src/index/store.js';
import { encodeFloat16 } from '../src/util/float16.js';
import { readFeaturePages } from './helpers/feature-pages.js';
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

test('featurePages yields every stored row in id order, and refuses rows of another width', async () => {
  const store = await FeatureStore.open(join(await tempDir(), 'store.sqlite'));
  // A source starting with ':' is one keyv escapes: the direct decode must still read the row.
  for (let i = 0; i < 1203; i++) await store.exclusive(() => store.insert({ ...base, source: i % 2 ? ':odd.png' : 'even.png', sha256: `h${i}` }, features(i)));
  await store.exclusive(() => store.delete(7));
  const matrix = await readFeaturePages(store, 1280);
  const scanned: Array<{ id: number; features: Float32Array }> = [];
  for await (const image of store.scan()) scanned.push(image);
  scanned.sort((x, y) => x.id - y.id);
  assert.deepEqual(matrix.ids, scanned.map((image) => image.id));
  assert.equal(matrix.features.length, 1202 * 1280);
  scanned.forEach((image, row) => assert.deepEqual(matrix.features.subarray(row * 1280, (row + 1) * 1280), image.features, `row ${row}`));
  await assert.rejects(readFeaturePages(store, 64), (error) => isAppError(error, 'STORE_FAILED') && /1280 features where 64/.test(error.message));
  await store.close();
});

test('references: a second post is added once, removed on its own; the last one takes the image and its keys', async () => {
  const store = await FeatureStore.open(join(await tempDir(), 'store.sqlite'));
  const image = await store.exclusive(() => store.insert({ ...base, source: 'post1', ref: 'm1', sha256: 'aa' }, features(1), new Uint8Array([1, 2, 3])));
  const second = { source: 'post2', ref: 'm2', addedAt: base.addedAt, extra: { channelId: 'c2' } };
  assert.equal((await store.exclusive(() => store.addReference(image.id, second)))?.added, true);
  assert.equal((await store.exclusive(() => store.addReference(image.id, second)))?.added, false, 'the same source twice is one reference');
  assert.equal(await store.exclusive(() => store.addReference(99, second)), undefined);
  assert.deepEqual((await store.get(image.id))?.refs.map((r) => r.source), ['post1', 'post2']);
  assert.deepEqual([await store.idsByRef('m1'), await store.idsByRef('m2')], [[image.id], [image.id]]);

  const first = await store.exclusive(() => store.removeReferences(image.id, (r) => r.ref === 'm1'));
  assert.deepEqual([first.removed.map((r) => r.source), first.imageDeleted], [['post1'], false]);
  assert.deepEqual(await store.idsByRef('m1'), []);
  const left = await store.get(image.id);
  assert.deepEqual([left?.source, left?.extra?.channelId, left?.refs.length], ['post2', 'c2', 1], 'the remaining post is the record’s first');
  assert.ok(await store.getThumbnail(image.id));

  const last = await store.exclusive(() => store.removeReferences(image.id, () => true));
  assert.deepEqual([last.removed.map((r) => r.source), last.imageDeleted], [['post2'], true]);
  assert.deepEqual([await store.get(image.id), await store.findBySha('aa'), await store.getThumbnail(image.id), await store.idsByRef('m2')], [undefined, undefined, undefined, []]);
  assert.deepEqual(await store.exclusive(() => store.removeReferences(image.id, () => true)), { removed: [], imageDeleted: false });
  await store.close();
});

test('a store written before references is read as one reference per image, and opening it writes the records compact', async () => {
  const path = join(await tempDir(), 'store.sqlite');
  // The format of the previous release, written with keyv directly: source, extra and ref at the top level.
  const adapter = new KeyvSqlite({ uri: `sqlite://${path}` });
  const old = new Keyv({ store: adapter, namespace: 'store' });
  const f16 = encodeFloat16(features(1)).toString('base64');
  await old.set('img:1', { id: 1, sha256: 'aa', source: 'discord:g/c/m1/a', width: 10, height: 20, addedAt: base.addedAt, extra: { channelId: 'c', authorId: 'u' }, ref: 'm1', f16 });
  await old.set('img:2', { id: 2, sha256: 'bb', source: 'b.png', width: 10, height: 20, addedAt: base.addedAt, f16 });
  await old.set('sha:aa', 1);
  await old.set('sha:bb', 2);
  await old.set('ref:m1|1', 1);
  await old.set('meta:nextId', 3);
  await old.disconnect();
  // The record as its row in the `images` table holds it (image-tables.ts), read around the store.
  const raw = async (id: number) => {
    const check = new KeyvSqlite({ uri: `sqlite://${path}` });
    const rows = (await check.query('SELECT id, sha, width, height, added_at, refs FROM images WHERE id = ?', id)) as Array<{ id: number; sha: string; width: number; height: number; added_at: string; refs: string }>;
    await check.disconnect();
    return rows[0] && { id: rows[0].id, sha256: rows[0].sha, width: rows[0].width, height: rows[0].height, addedAt: rows[0].added_at, r: JSON.parse(rows[0].refs) as unknown };
  };

  const store = await FeatureStore.open(path);
  const legacy = await store.get(1);
  assert.deepEqual(legacy?.refs, [{ source: 'discord:g/c/m1/a', ref: 'm1', extra: { channelId: 'c', authorId: 'u' }, addedAt: base.addedAt }]);
  assert.deepEqual([legacy?.source, legacy?.ref, legacy?.extra?.authorId], ['discord:g/c/m1/a', 'm1', 'u']);
  assert.deepEqual((await store.get(2))?.refs.map((r) => r.source), ['b.png']);
  const scanned: number[] = [];
  for await (const image of store.scan()) scanned.push(image.refs.length);
  assert.deepEqual(scanned, [1, 1]);
  // Opening compacted it (store-compaction.ts) and moved it to its table (record-migration.ts): the ids the source
  // holds are its segments' numbers.
  assert.deepEqual(await raw(1), { id: 1, sha256: 'aa', width: 10, height: 20, addedAt: base.addedAt, r: [['discord:g/c/m1/a', 0, 3, { channelId: 2, authorId: 'u' }]] });

  await store.exclusive(() => store.addReference(1, { source: 'discord:g/c/m2/a', ref: 'm2', addedAt: '2026-02-01T00:00:00.000Z' }));
  const upgraded = await raw(1);
  assert.deepEqual(upgraded?.r, [['discord:g/c/m1/a', 0, 3, { channelId: 2, authorId: 'u' }], ['discord:g/c/m2/a', '2026-02-01T00:00:00.000Z', 3]], 'a touched record is written compact');
  assert.deepEqual((await store.get(1))?.refs[1], { source: 'discord:g/c/m2/a', ref: 'm2', addedAt: '2026-02-01T00:00:00.000Z' });
  const removed = await store.exclusive(() => store.removeReferences(1, (r) => r.ref === 'm1'));
  assert.deepEqual([removed.removed[0].extra?.authorId, await store.idsByRef('m1'), await store.idsByRef('m2')], ['u', [], [1]]);
  assert.equal((await store.exclusive(() => store.removeReferences(2, () => true))).imageDeleted, true, 'a legacy record without a ref is removed whole');
  assert.equal(await store.findBySha('bb'), undefined);
  assert.equal((await readFeaturePages(store, 1280)).ids.length, 1);
  await store.close();
});

test('packed features (zeros elided) unpack to the same bytes for every half pattern, negative zero and NaN included', () => {
  let x = 7;
  const next = () => (x = (x * 1103515245 + 12345) >>> 0);
  for (let round = 0; round < 200; round++) {
    const f16 = Buffer.alloc(2 * (1 + (next() % 1500)));
    const zeroShare = (next() % 100) / 100;
    for (let i = 0; i < f16.length; i += 2) {
      const r = next() % 100;
      const half = r < zeroShare * 100 ? 0 : r % 7 === 0 ? [0x8000, 0x7e00, 0x7c00, 0x0001, 0xfbff][next() % 5] : next() & 0xffff;
      f16.writeUInt16LE(half, i);
    }
    const out = Buffer.alloc(f16.length + 4, 0xaa);
    unpackInto(pack(f16), f16.length, out, 2);
    assert.ok(out.subarray(2, 2 + f16.length).equals(f16), `round ${round}`);
    assert.deepEqual([out[0], out[1], out[out.length - 1]], [0xaa, 0xaa, 0xaa], 'nothing written outside the slot');
  }
});
