import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { isAppError } from '../src/errors.js';
import { FEATURES_MIGRATED } from '../src/index/feature-migration.js';
import { FeatureStore } from '../src/index/store.js';
import { decodeFloat16, encodeFloat16 } from '../src/util/float16.js';
import { readFeaturePages } from './helpers/feature-pages.js';
import { killDuringOpen } from './helpers/kill-during-open.js';
import { tempDir } from './helpers/temp-dir.js';

const DIM = 1280;
const IMAGES = 1203;

/** Seeded features with zeros, tiny and large values: every one must come back with the same float16 bits. */
function oldFeatures(id: number): Buffer {
  let x = id * 2654435761;
  const next = () => ((x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32);
  return encodeFloat16(Float32Array.from({ length: DIM }, () => (next() < 0.3 ? 0 : next() ** 3 * 6)));
}

/** A store in the previous release's form, written with keyv directly: features as base64 inside each record. */
async function writeOldStore(path: string): Promise<void> {
  const old = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${path}` }), namespace: 'store' });
  for (let id = 1; id <= IMAGES; id++) {
    const refs = [{ source: `discord:g/c/m${id}/a`, ref: `m${id}`, addedAt: '2026-01-01T00:00:00.000Z', extra: { channelId: 'c' } }];
    // Every tenth record predates references too: both old forms at once.
    const value = id % 10 === 0
      ? { id, sha256: `h${id}`, source: `${id}.png`, width: 1, height: 2, addedAt: '2026-01-01T00:00:00.000Z', f16: oldFeatures(id).toString('base64') }
      : { id, sha256: `h${id}`, width: 1, height: 2, addedAt: '2026-01-01T00:00:00.000Z', refs, f16: oldFeatures(id).toString('base64') };
    await old.set(`img:${id}`, value);
    await old.set(`sha:h${id}`, id);
  }
  await old.set('meta:nextId', IMAGES + 1);
  await old.disconnect();
}

/** What is stored, read around the store: how many records still hold base64 features, and whether the migration finished. */
async function rawState(path: string): Promise<{ oldForm: number; migrated: boolean }> {
  const adapter = new KeyvSqlite({ uri: `sqlite://${path}` });
  const rows = (await adapter.query("SELECT count(*) AS n FROM keyv WHERE key LIKE 'store:img:%' AND value LIKE '%\"f16\"%'")) as Array<{ n: number }>;
  const done = (await adapter.query('SELECT value FROM keyv WHERE key = ?', `store:${FEATURES_MIGRATED}`)) as unknown[];
  await adapter.disconnect();
  return { oldForm: rows[0].n, migrated: done.length > 0 };
}

/** Opens the store (finishing the migration); then every image's features equal the old record's bits, through get, scan and featurePages; records intact. */
async function assertComplete(path: string, migrationBatch?: number): Promise<void> {
  await (await FeatureStore.open(path, migrationBatch === undefined ? {} : { migrationBatch })).close();
  assert.deepEqual(await rawState(path), { oldForm: 0, migrated: true });
  const store = await FeatureStore.open(path);
  try {
    assert.equal(await store.count(), IMAGES);
    const matrix = await readFeaturePages(store, DIM);
    assert.deepEqual(matrix.ids, Array.from({ length: IMAGES }, (_, i) => i + 1));
    for (let id = 1; id <= IMAGES; id++) {
      const expected = oldFeatures(id);
      assert.ok(encodeFloat16(matrix.features.subarray((id - 1) * DIM, id * DIM)).equals(expected), `featurePages row of image ${id}`);
    }
    let scanned = 0;
    for await (const image of store.scan()) {
      assert.ok(encodeFloat16(image.features).equals(oldFeatures(image.id)), `scanned image ${image.id}`);
      scanned += 1;
    }
    assert.equal(scanned, IMAGES);
    const one = await store.get(20);
    assert.deepEqual([one?.source, one?.refs.length, one?.sha256], ['20.png', 1, 'h20']);
    assert.deepEqual(one?.features, decodeFloat16(oldFeatures(20)));
    assert.equal((await store.get(21))?.ref, 'm21');
    // The writer above left no `ref:` keys: the caller keys come from the records' references (record-migration.ts).
    assert.deepEqual(await store.idsByRef('m21'), [21]);
    assert.equal(await store.findBySha('h21'), 21);
    const next = await store.exclusive(() => store.insert({ sha256: 'new', source: 'n.png', width: 1, height: 1, addedAt: '' }, decodeFloat16(oldFeatures(7))));
    assert.equal(next.id, IMAGES + 1, 'ids carry on after the migration');
  } finally {
    await store.close();
  }
}

test('opening a store of the previous form moves every feature to the BLOB table, bit for bit', async () => {
  const path = join(await tempDir(), 'store.sqlite');
  await writeOldStore(path);
  assert.deepEqual(await rawState(path), { oldForm: IMAGES, migrated: false });
  await assertComplete(path, 100);
});

test('a migration that fails after some batches leaves a store that opens, reads, and finishes next time', async () => {
  const path = join(await tempDir(), 'store.sqlite');
  await writeOldStore(path);
  const failing = FeatureStore.open(path, {
    migrationBatch: 100,
    beforeMigrationCommit: (committed) => {
      if (committed === 4) throw new Error('injected failure in the fifth batch');
    },
  });
  await assert.rejects(failing, (error) => isAppError(error, 'STORE_FAILED'));
  // Four batches committed, the fifth rolled back: both forms side by side, as a kill would leave them.
  assert.deepEqual(await rawState(path), { oldForm: IMAGES - 400, migrated: false });

  // A second failure on the resumed run: it starts at the cursor, not at the first record.
  const seen: number[] = [];
  await assert.rejects(FeatureStore.open(path, { migrationBatch: 100, beforeMigrationCommit: (c) => { seen.push(c); if (c === 2) throw new Error('again'); } }));
  assert.deepEqual(await rawState(path), { oldForm: IMAGES - 600, migrated: false });
  assert.deepEqual(seen, [0, 1, 2]);
  await assertComplete(path);
});

test('a process killed during the migration leaves a store that finishes it on the next open', async () => {
  const path = join(await tempDir(), 'store.sqlite');
  await writeOldStore(path);
  await killDuringOpen(path, { batchOption: 'migrationBatch', batch: 50, hook: 'beforeMigrationCommit' });
  const state = await rawState(path);
  assert.equal(state.migrated, false);
  // Seven batches of 50 committed; the eighth, open when the kill came, left nothing.
  assert.equal(state.oldForm, IMAGES - 7 * 50);
  await assertComplete(path);
});
