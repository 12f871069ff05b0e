import type Keyv from 'keyv';
import { runBatchedMigration } from './batched-migration.js';
import { referencesOf, upgraded, type RecordValue } from './image-record.js';
import type { ThumbnailBlocks } from './thumbnail-blobs.js';

/**
 * Brings a store written before thumbnails had a table of their own to the compact form: each image's thumbnail
 * (`thumb:<id>`, base64 in keyv's JSON) moves to the `thumbnails` table as raw bytes (thumbnail-blobs.ts) and its
 * record is rewritten with compact references (image-record.ts), a batch per transaction, resumable
 * (batched-migration.ts); `meta:compactStore` marks a finished store. The caller vacuums afterwards (the freed pages stay in the
 * file otherwise).
 */
export const STORE_COMPACTED = 'meta:compactStore';
const CURSOR = 'meta:compactionCursor';
const DEFAULT_BATCH = 500;

export interface CompactionOptions {
  /** Images per transaction. */
  compactionBatch?: number;
  /** Tests only: called inside each batch's transaction before it commits, with the number of batches committed before it; a throw rolls the batch back, as a kill would. */
  beforeCompactionCommit?: (committed: number) => void;
}

interface Store {
  keyv: Keyv;
  thumbnails: ThumbnailBlocks;
  imagePages(after?: string): AsyncGenerator<Array<{ key: string; value: string }>>;
  /** Every key of the store that starts with `prefix`, as keyv takes it (without keyv's namespace). */
  keysWithPrefix(prefix: string): Promise<string[]>;
  transaction<T>(work: () => Promise<T>): Promise<T>;
}

/** Returns how many images it rewrote (0 for a store already compact). */
export async function compactStore(store: Store, options: CompactionOptions = {}): Promise<number> {
  return runBatchedMigration(store, {
    doneKey: STORE_COMPACTED,
    cursorKey: CURSOR,
    batch: options.compactionBatch ?? DEFAULT_BATCH,
    ...(options.beforeCompactionCommit ? { beforeCommit: options.beforeCompactionCommit } : {}),
    moveBatch: async (keys) => {
      // Read again inside the transaction: another process sharing the file may have changed them since.
      const records = await store.keyv.getMany<RecordValue>(keys);
      const ids = records.filter((r): r is RecordValue => r !== undefined).map((r) => r.id);
      const thumbs = await store.keyv.getMany<string>(ids.map((id) => `thumb:${id}`));
      const moving: Array<{ id: number; bytes: Buffer }> = [];
      for (const [i, id] of ids.entries()) {
        const base64 = thumbs[i];
        if (typeof base64 === 'string') moving.push({ id, bytes: Buffer.from(base64, 'base64') });
      }
      await store.thumbnails.putMany(moving);
      if (moving.length > 0) await store.keyv.deleteMany(moving.map(({ id }) => `thumb:${id}`));
      for (const record of records) {
        if (record === undefined || record.r !== undefined) continue;
        await store.keyv.set(`img:${record.id}`, upgraded(record, referencesOf(record)));
      }
      return ids.length;
    },
    finish: async () => {
      // A thumbnail whose image is gone (none should be: they are deleted together) would otherwise stay for good.
      const orphans = await store.keysWithPrefix('thumb:');
      if (orphans.length > 0) await store.keyv.deleteMany(orphans);
    },
  });
}
