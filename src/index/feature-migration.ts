import type Keyv from 'keyv';
import type { FeatureBlocks } from './feature-blobs.js';
import type { RecordValue } from './store.js';

/**
 * Moves features out of records written before the `features` table existed (base64 float16 inside keyv's JSON)
 * into it, in batches: one transaction writes a batch's BLOBs, rewrites its records without features and saves the
 * cursor, so a process killed mid-way leaves every record in one form or the other, each readable, and the next
 * open carries on from the cursor. `meta:featureBlobs` marks a finished store, so later opens read one key. Then
 * the file is to be vacuumed, or it would keep the size the base64 gave it (`vacuum`).
 */
export const FEATURES_MIGRATED = 'meta:featureBlobs';
const CURSOR = 'meta:featureMigrationCursor';
const DEFAULT_BATCH = 500;

export interface MigrationOptions {
  /** Records per transaction. */
  migrationBatch?: number;
  /** Tests only: called inside each batch's transaction before it commits, with the number of batches committed before it; a throw rolls the batch back, as a kill would. */
  beforeMigrationCommit?: (committed: number) => void;
}

interface Store {
  keyv: Keyv;
  blocks: FeatureBlocks;
  imagePages(after?: string): AsyncGenerator<Array<{ key: string; value: string }>>;
  transaction<T>(work: () => Promise<T>): Promise<T>;
  vacuum(): Promise<void>;
}

/** Returns how many records it moved (0 for a store already in the new form). */
export async function migrateFeatures(store: Store, options: MigrationOptions = {}): Promise<number> {
  if ((await store.keyv.get(FEATURES_MIGRATED)) === true) return 0;
  const batch = options.migrationBatch ?? DEFAULT_BATCH;
  const cursor = await store.keyv.get<string>(CURSOR);
  let moved = 0;
  let committed = 0;
  let pending: Array<{ key: string; value: string }> = [];
  const flush = async (): Promise<void> => {
    const rows = pending;
    pending = [];
    await store.transaction(async () => {
      const blobs: Array<{ id: number; f16: Buffer }> = [];
      // Read again inside the transaction: another process sharing the file may have moved or changed them since.
      const keys = rows.map((row) => row.key.slice(row.key.indexOf(':') + 1));
      for (const record of await store.keyv.getMany<RecordValue>(keys)) {
        if (record?.f16 === undefined) continue;
        const { f16, ...rest } = record;
        // A record whose features were never written (an empty string) has none to move.
        if (f16.length > 0) blobs.push({ id: record.id, f16: Buffer.from(f16, 'base64') });
        await store.keyv.set(`img:${record.id}`, rest);
        moved += 1;
      }
      await store.blocks.putMany(blobs);
      await store.keyv.set(CURSOR, rows[rows.length - 1].key);
      options.beforeMigrationCommit?.(committed);
    });
    committed += 1;
  };
  for await (const rows of store.imagePages(cursor)) {
    for (const row of rows) {
      pending.push(row);
      if (pending.length === batch) await flush();
    }
  }
  if (pending.length > 0) await flush();
  await store.transaction(async () => {
    await store.keyv.set(FEATURES_MIGRATED, true);
    await store.keyv.delete(CURSOR);
  });
  // The base64 the records held leaves free pages that SQLite would only reuse, never return: the store vacuums
  // (FeatureStore.open, once after every step of bringing the store up to date).
  if (moved > 0) await store.vacuum().catch(() => undefined);
  return moved;
}
