import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { isAppError } from '../src/errors.js';
import { compactReference, referencesOf, type ImageReference } from '../src/index/image-record.js';
import { STORE_COMPACTED } from '../src/index/store-compaction.js';
import { FeatureStore } from '../src/index/store.js';
import { THUMBNAIL_BLOCK_ROWS } from '../src/index/thumbnail-blobs.js';
import { encodeFloat16 } from '../src/util/float16.js';
import { mulberry32 } from '../src/util/random.js';
import { killDuringOpen } from './helpers/kill-during-open.js';
import { tempDir } from './helpers/temp-dir.js';

const IMAGES = 1203;
const ADDED = '2026-01-01T00:00:00.000Z';

/** Seeded bytes of a seeded length (0 included: an empty thumbnail is still one), standing in for a WebP. */
function thumbnailOf(id: number): Buffer {
  const random = mulberry32(id);
  return Buffer.from(Array.from({ length: id % 97 === 0 ? 0 : 500 + Math.floor(random() * 5000) }, () => Math.floor(random() * 256)));
}

/** Images with an id divisible by 7 were stored without a thumbnail (thumbnails off). */
const hasThumbnail = (id: number) => id % 7 !== 0;

/** The references image `id` was stored with, in the shapes older writers left: the bot's, a thread's, a CLI file's, two posts. */
function referencesFor(id: number): ImageReference[] {
  const [g, c, m, k] = ['1180000000000000000', `11900000000000000${id % 40}`, String(1200000000000000000n + BigInt(id)), `a${id}`];
  const bot: ImageReference = { source: `discord:${g}/${c}/${m}/${k}`, ref: m, addedAt: ADDED, extra: { guildId: g, channelId: c, messageId: m, imageKey: k, authorId: `u${id % 5}`, postedAt: '2025-12-31T00:00:00.000Z' } };
  if (id % 5 === 1) return [{ source: `art/${id}.png`, addedAt: ADDED }];
  if (id % 5 === 2) return [{ ...bot, extra: { ...bot.extra!, channelId: 'forum', threadId: c } }];
  if (id % 5 === 3) return [bot, { source: `discord:${g}/${c}/9${id}/b`, ref: `9${id}`, addedAt: '2026-02-02T00:00:00.000Z', extra: { messageId: `9${id}`, note: '' } }];
  return [bot];
}

/** A store of the previous forms, written with keyv directly: features and thumbnails as base64, references as objects. */
async function writeOldStore(path: string): Promise<void> {
  const old = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${path}` }), namespace: 'store' });
  for (let id = 1; id <= IMAGES; id++) {
    const refs = referencesFor(id);
    const f16 = encodeFloat16(Float32Array.from({ length: 1280 }, (_, i) => (i * id) % 3)).toString('base64');
    // Every tenth record predates references too, and some still hold their features (before the features table).
    const value = id % 10 === 0
      ? { id, sha256: `h${id}`, source: refs[0].source, ref: refs[0].ref, extra: refs[0].extra, width: 1, height: 2, addedAt: ADDED, f16 }
      : { id, sha256: `h${id}`, width: 1, height: 2, addedAt: ADDED, refs, f16 };
    await old.set(`img:${id}`, value);
    await old.set(`sha:h${id}`, id);
    for (const ref of new Set(refs.map((r) => r.ref))) if (ref !== undefined) await old.set(`ref:${ref}|${id}`, 1);
    if (hasThumbnail(id)) await old.set(`thumb:${id}`, thumbnailOf(id).toString('base64'));
  }
  // A thumbnail whose image is gone: the compaction leaves no `thumb:` key behind.
  await old.set('thumb:99999', 'AAAA');
  await old.set('meta:nextId', IMAGES + 1);
  await old.disconnect();
}

/** What is stored, read around the store: `thumb:` keys left, records not yet compact, thumbnails in the table, finished or not. */
async function rawState(path: string): Promise<{ thumbKeys: number; oldRecords: number; tableThumbnails: number; compacted: boolean }> {
  const adapter = new KeyvSqlite({ uri: `sqlite://${path}` });
  try {
    const count = async (sql: string) => ((await adapter.query(sql)) as Array<{ n: number }>)[0].n;
    const thumbKeys = await count("SELECT count(*) AS n FROM keyv WHERE key LIKE 'store:thumb:%'");
    const oldRecords = await count("SELECT count(*) AS n FROM keyv WHERE key LIKE 'store:img:%' AND value NOT LIKE '%\"r\":[%'");
    const tables = (await adapter.query("SELECT name FROM sqlite_master WHERE name = 'thumbnails'")) as unknown[];
    const present = tables.length === 0 ? [] : ((await adapter.query('SELECT present FROM thumbnails')) as Array<{ present: number }>);
    const tableThumbnails = present.reduce((sum, { present: bits }) => sum + [...bits.toString(2)].filter((b) => b === '1').length, 0);
    const compacted = ((await adapter.query('SELECT value FROM keyv WHERE key = ?', `store:${STORE_COMPACTED}`)) as unknown[]).length > 0;
    return { thumbKeys, oldRecords, tableThumbnails, compacted };
  } finally {
    await adapter.disconnect();
  }
}

/**
 * Per image, read around the store: whose record is compact (in keyv, or moved on to the `images` table once the
 * compaction finished: record-migration.ts), whose thumbnail is in the table, whose in keyv.
 */
async function imageForms(path: string): Promise<{ compact: Set<number>; table: Set<number>; keyv: Set<number> }> {
  const adapter = new KeyvSqlite({ uri: `sqlite://${path}` });
  try {
    const keys = async (sql: string, prefix: string) => new Set(((await adapter.query(sql)) as Array<{ key: string }>).map((r) => Number(r.key.slice(prefix.length))));
    const compact = await keys("SELECT key FROM keyv WHERE key LIKE 'store:img:%' AND value LIKE '%\"r\":[%'", 'store:img:');
    const imageTable = (await adapter.query("SELECT name FROM sqlite_master WHERE name = 'images'")) as unknown[];
    if (imageTable.length > 0) for (const { id } of (await adapter.query('SELECT id FROM images')) as Array<{ id: number }>) compact.add(id);
    const keyv = await keys("SELECT key FROM keyv WHERE key LIKE 'store:thumb:%'", 'store:thumb:');
    const table = new Set<number>();
    const tables = (await adapter.query("SELECT name FROM sqlite_master WHERE name = 'thumbnails'")) as unknown[];
    const rows = tables.length === 0 ? [] : ((await adapter.query('SELECT block, present FROM thumbnails')) as Array<{ block: number; present: number }>);
    for (const { block, present } of rows) for (let slot = 0; slot < THUMBNAIL_BLOCK_ROWS; slot++) if (present & (1 << slot)) table.add(block * THUMBNAIL_BLOCK_ROWS + slot);
    return { compact, table, keyv };
  } finally {
    await adapter.disconnect();
  }
}

const THUMBNAILS = Array.from({ length: IMAGES }, (_, i) => i + 1).filter(hasThumbnail).length;

/** Opens the store (finishing the compaction); then every image reads as it was written: references, thumbnail bytes, lookups. */
async function assertComplete(path: string, compactionBatch?: number): Promise<void> {
  await (await FeatureStore.open(path, compactionBatch === undefined ? {} : { compactionBatch })).close();
  assert.deepEqual(await rawState(path), { thumbKeys: 0, oldRecords: 0, tableThumbnails: THUMBNAILS, compacted: true });
  const store = await FeatureStore.open(path);
  try {
    assert.equal(await store.count(), IMAGES);
    const records = await store.getRecords(Array.from({ length: IMAGES }, (_, i) => i + 1));
    for (let id = 1; id <= IMAGES; id++) {
      const record = records.get(id);
      assert.deepEqual(record?.refs, referencesFor(id), `references of image ${id}`);
      assert.deepEqual([record?.source, record?.ref, record?.extra], [referencesFor(id)[0].source, referencesFor(id)[0].ref, referencesFor(id)[0].extra]);
      const thumbnail = await store.getThumbnail(id);
      if (hasThumbnail(id)) assert.ok(thumbnail?.equals(thumbnailOf(id)), `thumbnail of image ${id}`);
      else assert.equal(thumbnail, undefined, `image ${id} has no thumbnail`);
    }
    assert.deepEqual(await store.idsByRef(String(1200000000000000000n + 4n)), [4]);
    assert.equal(await store.findBySha('h21'), 21);
    // Removing an image takes its thumbnail out of the table; the rest of its block stays.
    await store.exclusive(() => store.delete(9));
    assert.deepEqual([await store.getThumbnail(9), (await store.getThumbnail(10))?.equals(thumbnailOf(10))], [undefined, true]);
    const next = await store.exclusive(() => store.insert({ sha256: 'new', source: 'n.png', width: 1, height: 1, addedAt: '' }, new Float32Array(1280), thumbnailOf(5)));
    assert.equal(next.id, IMAGES + 1, 'ids carry on after the compaction');
    assert.ok((await store.getThumbnail(next.id))?.equals(thumbnailOf(5)));
  } finally {
    await store.close();
  }
}

test('opening a store of the previous form moves thumbnails to their table and writes records compact, every byte kept, the file smaller', async () => {
  const path = join(await tempDir(), 'store.sqlite');
  await writeOldStore(path);
  assert.deepEqual(await rawState(path), { thumbKeys: THUMBNAILS + 1, oldRecords: IMAGES, tableThumbnails: 0, compacted: false });
  const before = (await stat(path)).size;
  await assertComplete(path, 100);
  const after = (await stat(path)).size + ((await stat(`${path}-wal`).catch(() => undefined))?.size ?? 0);
  assert.ok(after < before * 0.8, `vacuumed: ${after} B against ${before} B before`);
});

test('a compaction that fails after some batches leaves a store that opens, reads, and finishes next time', async () => {
  const path = join(await tempDir(), 'store.sqlite');
  await writeOldStore(path);
  const failing = FeatureStore.open(path, {
    compactionBatch: 100,
    beforeCompactionCommit: (committed) => {
      if (committed === 4) throw new Error('injected failure in the fifth batch');
    },
  });
  await assert.rejects(failing, (error) => isAppError(error, 'STORE_FAILED'));
  // Four batches committed, the fifth rolled back: both forms side by side, as a kill would leave them.
  // Batches go in key order (img:1, img:10, img:100, …): the first 400 keys' images have their thumbnails moved.
  const firstKeys = Array.from({ length: IMAGES }, (_, i) => `img:${i + 1}`).sort().slice(0, 400);
  const moved = firstKeys.filter((key) => hasThumbnail(Number(key.slice(4)))).length;
  assert.deepEqual(await rawState(path), { oldRecords: IMAGES - 400, compacted: false, tableThumbnails: moved, thumbKeys: THUMBNAILS + 1 - moved });

  // A second failure on the resumed run: it starts at the cursor, not at the first record.
  const seen: number[] = [];
  await assert.rejects(FeatureStore.open(path, { compactionBatch: 100, beforeCompactionCommit: (c) => { seen.push(c); if (c === 2) throw new Error('again'); } }));
  assert.equal((await rawState(path)).oldRecords, IMAGES - 600);
  assert.deepEqual(seen, [0, 1, 2]);
  await assertComplete(path);
});

test('a process killed during the compaction leaves a store that finishes it on the next open', async () => {
  const path = join(await tempDir(), 'store.sqlite');
  await writeOldStore(path);
  await killDuringOpen(path, { batchOption: 'compactionBatch', batch: 50, hook: 'beforeCompactionCommit' });
  const state = await rawState(path);
  assert.equal(state.compacted, false);
  // Seven batches of 50 committed; the eighth, open when the kill came, left nothing.
  assert.equal(state.oldRecords, IMAGES - 7 * 50);
  assert.equal(state.tableThumbnails + state.thumbKeys, THUMBNAILS + 1, 'each thumbnail in one place, none lost or doubled');
  await assertComplete(path);
});

test('processes killed at seeded random moments (mid-batch, between batches, in the VACUUM): the next open always finishes, every byte kept', async () => {
  const dir = await tempDir();
  const pristine = join(dir, 'pristine.sqlite');
  await writeOldStore(pristine);
  const path = join(dir, 'store.sqlite');
  const storeModule = fileURLToPath(new URL('../src/index/store.js', import.meta.url));
  const random = mulberry32(13);
  const fresh = async () => {
    for (const suffix of ['-wal', '-shm']) await rm(path + suffix, { force: true });
    await copyFile(pristine, path);
  };
  await fresh();
  let kills = 0;
  for (let attempt = 0; kills < 6 && attempt < 30; attempt++) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      const { FeatureStore } = await import(${JSON.stringify(storeModule)});
      process.stdout.write('started\\n');
      await (await FeatureStore.open(${JSON.stringify(path)}, { compactionBatch: 100 })).close();
      process.stdout.write('done\\n');
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    const delay = 50 + random() * 1500;
    child.stdout.on('data', (chunk: Buffer) => {
      if (!output.includes('started') && chunk.toString().includes('started')) setTimeout(() => child.kill('SIGKILL'), delay);
      output += chunk.toString();
    });
    const signal = await exited;
    if (signal !== 'SIGKILL' || output.includes('done')) {
      // Finished before the kill: check it, and start again from the previous form for the next kill.
      await assertComplete(path);
      await fresh();
      continue;
    }
    kills += 1;
    // Whatever the moment, each image is wholly in one form or the other: a compact record with its thumbnail in
    // the table, or the previous record with its thumbnail in keyv.
    const forms = await imageForms(path);
    for (let id = 1; id <= IMAGES; id++) {
      const form = forms.compact.has(id) ? { table: hasThumbnail(id), keyv: false } : { table: false, keyv: hasThumbnail(id) };
      assert.deepEqual({ table: forms.table.has(id), keyv: forms.keyv.has(id) }, form, `kill ${kills} after ${Math.round(delay)} ms: image ${id} (compact: ${forms.compact.has(id)})`);
    }
  }
  assert.equal(kills, 6, 'six kills landed before the compaction finished');
  await assertComplete(path);
});

test('compact references read back exactly, whatever their values; a value the form cannot hold keeps the reference whole', () => {
  const random = mulberry32(11);
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
  const words = ['', 'a', '0', '1', 'discord', 'g', 'c', 'm', 'x:y', '12', 'a/b'];
  for (let round = 0; round < 2000; round++) {
    const source = Array.from({ length: 1 + Math.floor(random() * 5) }, () => pick(words)).join(pick(['/', ':', '']));
    const recordAddedAt = pick([ADDED, '']);
    const reference: ImageReference = { source, addedAt: pick([ADDED, '', 'later']) };
    if (random() < 0.7) reference.ref = pick(words);
    if (random() < 0.7) reference.extra = Object.fromEntries(Array.from({ length: Math.floor(random() * 6) }, (_, i) => [`k${i}`, pick(words)]));
    const stored = JSON.parse(JSON.stringify(compactReference(reference, recordAddedAt))) as ReturnType<typeof compactReference>;
    assert.ok(Array.isArray(stored));
    const [back] = referencesOf({ id: 1, sha256: '', width: 1, height: 1, addedAt: recordAddedAt, r: [stored] });
    assert.deepEqual(back, reference, JSON.stringify(reference));
  }
  // The bot's reference: every id but the author's is a segment of its source.
  const bot: ImageReference = { source: 'discord:111/222/333/444', ref: '333', addedAt: ADDED, extra: { guildId: '111', channelId: '222', messageId: '333', imageKey: '444', authorId: '555' } };
  assert.deepEqual(compactReference(bot, ADDED), ['discord:111/222/333/444', 0, 3, { guildId: 1, channelId: 2, messageId: 3, imageKey: 4, authorId: '555' }]);
  // A number where a string belongs (from some older writer) would read back as a segment: stored whole instead.
  const odd = { source: 'a/b', addedAt: ADDED, extra: { n: 1 } } as unknown as ImageReference;
  assert.equal(compactReference(odd, ADDED), odd);
  assert.deepEqual(referencesOf({ id: 1, sha256: '', width: 1, height: 1, addedAt: ADDED, r: [odd] }), [odd]);
});

test('thumbnails share rows of eight: one removed leaves its neighbours, the last one removed takes the row', async () => {
  const path = join(await tempDir(), 'store.sqlite');
  const store = await FeatureStore.open(path);
  const ids: number[] = [];
  for (let i = 0; i < 20; i++) {
    const record = await store.exclusive(() => store.insert({ sha256: `s${i}`, source: `${i}.png`, width: 1, height: 1, addedAt: ADDED }, new Float32Array(1280), i === 3 ? undefined : thumbnailOf(i)));
    ids.push(record.id);
  }
  const rows = async () => {
    const adapter = new KeyvSqlite({ uri: `sqlite://${path}` });
    const out = ((await adapter.query('SELECT block FROM thumbnails ORDER BY block')) as Array<{ block: number }>).map((r) => r.block);
    await adapter.disconnect();
    return out;
  };
  assert.deepEqual(await rows(), [0, 1, 2], 'ids 1-20 in rows of eight');
  for (const [i, id] of ids.entries()) assert.deepEqual(await store.getThumbnail(id), i === 3 ? undefined : thumbnailOf(i), `image ${id}`);
  for (const id of ids.filter((id) => Math.floor(id / THUMBNAIL_BLOCK_ROWS) === 1)) await store.exclusive(() => store.delete(id));
  assert.deepEqual(await rows(), [0, 2]);
  assert.deepEqual(await store.getThumbnail(ids[17]), thumbnailOf(17));
  await store.close();
});
