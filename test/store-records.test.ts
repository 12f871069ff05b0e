import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { isAppError } from '../src/errors.js';
import { FeatureBlocks } from '../src/index/feature-blobs.js';
import { FEATURES_MIGRATED } from '../src/index/feature-migration.js';
import { upgraded, type ImageReference } from '../src/index/image-record.js';
import { RECORDS_MOVED } from '../src/index/record-migration.js';
import { STORE_COMPACTED } from '../src/index/store-compaction.js';
import { FeatureStore } from '../src/index/store.js';
import { ThumbnailBlocks } from '../src/index/thumbnail-blobs.js';
import { decodeFloat16, encodeFloat16 } from '../src/util/float16.js';
import { killDuringOpen } from './helpers/kill-during-open.js';
import { tempDir } from './helpers/temp-dir.js';

const IMAGES = 1203;
const ADDED = '2026-01-01T00:00:00.000Z';

/** The bot's sha256 (64 hex digits, stored as 32 bytes) for most images; every 11th has a shorter string, as some tests' stores do. */
function shaOf(id: number): string {
  // Images 600 and 601 hold the same bytes (an import stores without a duplicate check).
  const bytes = id === 601 ? 600 : id;
  return id % 11 === 0 ? `h${bytes}` : createHash('sha256').update(`image ${bytes}`).digest('hex');
}

const message = (id: number) => String(1200000000000000000n + BigInt(Math.ceil(id / 3)));

/** The references of image `id`: the bot's (three images to a message), a CLI file's, two posts of one message. */
function referencesFor(id: number): ImageReference[] {
  const [g, c, m, k] = ['1180000000000000000', `11900000000000000${id % 40}`, message(id), `a${id}`];
  const bot: ImageReference = { source: `discord:${g}/${c}/${m}/${k}`, ref: m, addedAt: ADDED, extra: { guildId: g, channelId: c, messageId: m, imageKey: k, authorId: `u${id % 5}` } };
  if (id % 5 === 1) return [{ source: `art/${id}.png`, addedAt: ADDED }];
  if (id % 5 === 3) return [bot, { source: `discord:${g}/${c}/${m}/b${id}`, ref: m, addedAt: '2026-02-02T00:00:00.000Z' }, { source: `discord:${g}/${c}/9${id}/b`, ref: `9${id}`, addedAt: ADDED }];
  return [bot];
}

/** Every caller key the images' references hold, with the ids holding it in order. */
function callerKeys(): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (let id = 1; id <= IMAGES; id++) {
    for (const ref of new Set(referencesFor(id).flatMap((r) => (r.ref === undefined ? [] : [r.ref])))) out.set(ref, [...(out.get(ref) ?? []), id]);
  }
  return out;
}

function featuresOf(id: number): Float32Array {
  return Float32Array.from({ length: 1280 }, (_, i) => ((i * id) % 7) / 4);
}

function thumbnailOf(id: number): Buffer {
  return Buffer.from(`thumbnail ${id}`);
}

/**
 * A store of the previous release's form, written as its insertMany and addReference wrote it: compact records under
 * `img:<id>` in keyv with `sha:<sha256>` → id and `ref:<ref>|<id>` keys; features and thumbnails in their tables.
 */
async function writePreviousStore(path: string): Promise<void> {
  const adapter = new KeyvSqlite({ uri: `sqlite://${path}` });
  const old = new Keyv({ store: adapter, namespace: 'store' });
  const query = (sql: string, ...args: unknown[]) => adapter.query(sql, ...args);
  const blocks = new FeatureBlocks(query);
  const thumbnails = new ThumbnailBlocks(query);
  await blocks.createTable();
  await thumbnails.createTable();
  await adapter.query('BEGIN');
  for (let id = 1; id <= IMAGES; id++) {
    const refs = referencesFor(id);
    await old.set(`img:${id}`, upgraded({ id, sha256: shaOf(id), width: 100 + id, height: 2, addedAt: ADDED }, refs));
    await old.set(`sha:${shaOf(id)}`, id);
    for (const ref of new Set(refs.map((r) => r.ref))) if (ref !== undefined) await old.set(`ref:${ref}|${id}`, 1);
  }
  await blocks.putMany(Array.from({ length: IMAGES }, (_, i) => ({ id: i + 1, f16: encodeFloat16(featuresOf(i + 1)) })));
  await thumbnails.putMany(Array.from({ length: IMAGES }, (_, i) => ({ id: i + 1, bytes: thumbnailOf(i + 1) })));
  // Keys whose image is gone: the migration leaves none behind.
  await old.set('sha:gone', 99_999);
  await old.set('ref:gone|99999', 1);
  // What stays in keyv: the small values.
  await old.set('fb:asker|q4|5', { asker: 'asker', queryId: 4, result: 5, sign: 1, key: 'raw', at: ADDED });
  await old.set('fbi:4|fb:asker|q4|5', 1);
  await old.set('fbi:5|fb:asker|q4|5', 1);
  await old.set('meta:nextId', IMAGES + 1);
  await old.set(FEATURES_MIGRATED, true);
  await old.set(STORE_COMPACTED, true);
  await adapter.query('COMMIT');
  await old.disconnect();
}

/** What is stored, read around the store: image keys left in keyv, rows in the tables, finished or not. */
async function rawState(path: string): Promise<{ imgKeys: number; shaKeys: number; refKeys: number; rows: number; refRows: number; moved: boolean }> {
  const adapter = new KeyvSqlite({ uri: `sqlite://${path}` });
  try {
    const count = async (sql: string) => ((await adapter.query(sql)) as Array<{ n: number }>)[0].n;
    const tables = ((await adapter.query("SELECT name FROM sqlite_master WHERE name IN ('images', 'image_refs')")) as unknown[]).length;
    return {
      imgKeys: await count("SELECT count(*) AS n FROM keyv WHERE key LIKE 'store:img:%'"),
      shaKeys: await count("SELECT count(*) AS n FROM keyv WHERE key LIKE 'store:sha:%'"),
      refKeys: await count("SELECT count(*) AS n FROM keyv WHERE key LIKE 'store:ref:%'"),
      rows: tables === 2 ? await count('SELECT count(*) AS n FROM images') : 0,
      refRows: tables === 2 ? await count('SELECT count(*) AS n FROM image_refs') : 0,
      moved: ((await adapter.query('SELECT value FROM keyv WHERE key = ?', `store:${RECORDS_MOVED}`)) as unknown[]).length > 0,
    };
  } finally {
    await adapter.disconnect();
  }
}

/**
 * Per image, read around the store: whether its record is a keyv key or a row, and whether its caller keys are
 * `ref:` keys or `image_refs` rows (all of them in one place: which one is the set it is in, a mix is `mixed`).
 */
async function imageForms(path: string): Promise<Map<number, { record: string; refs: string }>> {
  const adapter = new KeyvSqlite({ uri: `sqlite://${path}` });
  try {
    const ids = async (sql: string, read: (row: Record<string, unknown>) => number) => ((await adapter.query(sql)) as Array<Record<string, unknown>>).map(read);
    const keyvRecords = new Set(await ids("SELECT key FROM keyv WHERE key LIKE 'store:img:%'", (r) => Number(String(r.key).slice('store:img:'.length))));
    const rows = new Set(await ids('SELECT id FROM images', (r) => Number(r.id)));
    const refKeys = await ids("SELECT key FROM keyv WHERE key LIKE 'store:ref:%'", (r) => Number(String(r.key).split('|')[1]));
    const refRows = await ids('SELECT id FROM image_refs', (r) => Number(r.id));
    const out = new Map<number, { record: string; refs: string }>();
    for (let id = 1; id <= IMAGES; id++) {
      const expected = new Set(referencesFor(id).flatMap((r) => (r.ref === undefined ? [] : [r.ref]))).size;
      const [inKeys, inRows] = [refKeys.filter((x) => x === id).length, refRows.filter((x) => x === id).length];
      const refs = expected === 0 ? 'none' : inKeys === expected && inRows === 0 ? 'keyv' : inRows === expected && inKeys === 0 ? 'table' : 'mixed';
      const record = keyvRecords.has(id) && !rows.has(id) ? 'keyv' : rows.has(id) && !keyvRecords.has(id) ? 'table' : keyvRecords.has(id) ? 'both' : 'lost';
      out.set(id, { record, refs });
    }
    return out;
  } finally {
    await adapter.disconnect();
  }
}

/** Opens the store (finishing the migration); then every image reads as it was written, every lookup answers, nothing is left in keyv but the small values. */
async function assertComplete(path: string, recordBatch?: number): Promise<void> {
  await (await FeatureStore.open(path, recordBatch === undefined ? {} : { recordBatch })).close();
  const refRows = [...callerKeys().values()].reduce((sum, ids) => sum + ids.length, 0);
  assert.deepEqual(await rawState(path), { imgKeys: 0, shaKeys: 0, refKeys: 0, rows: IMAGES, refRows, moved: true });
  const store = await FeatureStore.open(path);
  try {
    assert.equal(await store.count(), IMAGES);
    assert.deepEqual(await store.ids(), Array.from({ length: IMAGES }, (_, i) => i + 1));
    const records = await store.getRecords(Array.from({ length: IMAGES }, (_, i) => i + 1));
    for (let id = 1; id <= IMAGES; id++) {
      const record = records.get(id);
      assert.deepEqual(record && [record.sha256, record.width, record.height, record.addedAt, record.refs], [shaOf(id), 100 + id, 2, ADDED, referencesFor(id)], `record of image ${id}`);
      if (id !== 600) assert.equal(await store.findBySha(shaOf(id)), id, `duplicate check of image ${id}`);
    }
    // Two images with the same bytes: the newer is found, and the older once the newer is gone.
    assert.equal(await store.findBySha(shaOf(600)), 601);
    for (const [ref, ids] of callerKeys()) assert.deepEqual(await store.idsByRef(ref), ids, `caller key ${ref}`);
    assert.deepEqual([await store.idsByRef(message(4)), await store.idsByRef('98')], [[4, 5], [8]]);
    assert.deepEqual(await store.idsByRef('gone'), []);
    const image = await store.get(7);
    assert.deepEqual([image?.features, await store.getThumbnail(7)], [decodeFloat16(encodeFloat16(featuresOf(7))), thumbnailOf(7)]);
    let scanned = 0;
    for await (const stored of store.scan()) {
      assert.equal(stored.features.length, 1280);
      scanned += 1;
    }
    assert.equal(scanned, IMAGES);
    // The feedback stayed in keyv and still leaves with its image.
    assert.equal((await store.feedback.all()).length, 1);
    await store.exclusive(() => store.delete(601));
    assert.equal(await store.findBySha(shaOf(600)), 600);
    await store.exclusive(() => store.delete(5));
    assert.deepEqual([await store.idsByRef(message(5)), (await store.feedback.all()).length], [[4], 0]);
    const next = await store.exclusive(() => store.insert({ sha256: shaOf(5), source: 'n.png', width: 1, height: 1, addedAt: '', ref: 'n' }, featuresOf(1)));
    assert.deepEqual([next.id, await store.findBySha(shaOf(5)), await store.idsByRef('n')], [IMAGES + 1, IMAGES + 1, [IMAGES + 1]], 'ids carry on after the migration');
  } finally {
    await store.close();
  }
}

test('opening a store of the previous form moves records, duplicate keys and caller keys to their tables, every value kept, the file smaller', async () => {
  const path = join(await tempDir(), 'store.sqlite');
  await writePreviousStore(path);
  const refKeys = [...callerKeys().values()].reduce((sum, ids) => sum + ids.length, 0) + 1;
  // One `sha:` key fewer than images: two hold the same bytes, and the `sha:gone` key of an image gone.
  assert.deepEqual(await rawState(path), { imgKeys: IMAGES, shaKeys: IMAGES, refKeys, rows: 0, refRows: 0, moved: false });
  const size = async () => (await stat(path)).size + ((await stat(`${path}-wal`).catch(() => undefined))?.size ?? 0);
  const before = await size();
  await assertComplete(path, 100);
  assert.ok((await size()) < before * 0.9, `vacuumed: ${await size()} B against ${before} B before`);
});

test('a record migration that fails after some batches leaves a store that opens, reads, and finishes next time', async () => {
  const path = join(await tempDir(), 'store.sqlite');
  await writePreviousStore(path);
  const failing = FeatureStore.open(path, {
    recordBatch: 100,
    beforeRecordCommit: (committed) => {
      if (committed === 4) throw new Error('injected failure in the fifth batch');
    },
  });
  await assert.rejects(failing, (error) => isAppError(error, 'STORE_FAILED'));
  // Four batches committed, the fifth rolled back: both forms side by side, as a kill would leave them.
  const state = await rawState(path);
  assert.deepEqual([state.imgKeys, state.rows, state.moved], [IMAGES - 400, 400, false]);

  // A second failure on the resumed run: it starts at the cursor, not at the first record.
  const seen: number[] = [];
  await assert.rejects(FeatureStore.open(path, { recordBatch: 100, beforeRecordCommit: (c) => { seen.push(c); if (c === 2) throw new Error('again'); } }));
  assert.deepEqual([(await rawState(path)).rows, seen], [600, [0, 1, 2]]);
  await assertComplete(path);
});

test('a process killed during the record migration leaves each image wholly in one form, and the next open finishes it', async () => {
  const path = join(await tempDir(), 'store.sqlite');
  await writePreviousStore(path);
  await killDuringOpen(path, { batchOption: 'recordBatch', batch: 50, hook: 'beforeRecordCommit' });
  const state = await rawState(path);
  assert.equal(state.moved, false);
  // Seven batches of 50 committed; the eighth, open when the kill came, left nothing. Batches go in key order
  // (img:1, img:10, img:100, …): the first 350 keys' images are rows, with their caller keys; the rest keys.
  assert.deepEqual([state.imgKeys, state.rows], [IMAGES - 7 * 50, 7 * 50]);
  const moved = new Set(Array.from({ length: IMAGES }, (_, i) => `img:${i + 1}`).sort().slice(0, 350).map((key) => Number(key.slice(4))));
  for (const [id, form] of await imageForms(path)) {
    const where = moved.has(id) ? 'table' : 'keyv';
    assert.deepEqual(form, { record: where, refs: referencesFor(id).some((r) => r.ref !== undefined) ? where : 'none' }, `image ${id}`);
  }
  await assertComplete(path);
});

test('the duplicate check indexes 8 bytes of the sha256 but answers for all 32: images whose sha256s share their first 8 bytes are told apart', async () => {
  const store = await FeatureStore.open(join(await tempDir(), 'store.sqlite'));
  try {
    const [a, b, c] = ['aa', 'bb', 'cc'].map((tail) => '00'.repeat(8) + tail.repeat(24));
    const first = await store.exclusive(() => store.insert({ sha256: a, source: 'a.png', width: 1, height: 1, addedAt: ADDED }, featuresOf(1)));
    const second = await store.exclusive(() => store.insert({ sha256: b, source: 'b.png', width: 1, height: 1, addedAt: ADDED }, featuresOf(2)));
    // A string that is not 64 hex digits is kept as it is: it never matches the bytes it would spell.
    const text = await store.exclusive(() => store.insert({ sha256: a.toUpperCase(), source: 'c.png', width: 1, height: 1, addedAt: ADDED }, featuresOf(3)));
    assert.deepEqual([await store.findBySha(a), await store.findBySha(b), await store.findBySha(c), await store.findBySha(a.toUpperCase())], [first.id, second.id, undefined, text.id]);
    assert.deepEqual([...(await store.getRecords([first.id, text.id])).values()].map((r) => r.sha256), [a, a.toUpperCase()]);
  } finally {
    await store.close();
  }
});
