import type Keyv from 'keyv';
import { AppError } from '../errors.js';
import { runBatchedMigration } from './batched-migration.js';
import { referencesOf, upgraded, type RecordValue } from './image-record.js';
import type { ImageTables } from './image-tables.js';

/**
 * Moves the image records out of keyv into the store's own tables (image-tables.ts): each `img:<id>` record becomes
 * a row of `images`, its references' caller keys rows of `image_refs`, and its `sha:<sha256>` and `ref:<ref>|<id>`
 * keys go, a batch per transaction, resumable (batched-migration.ts). The last transaction drops any `sha:` or
 * `ref:` key left without its image and sets `meta:recordTables`. It runs after the features left the records
 * (feature-migration.ts) and the references became compact (store-compaction.ts): a record here holds no features.
 * The caller vacuums afterwards.
 */
export const RECORDS_MOVED = 'meta:recordTables';
const CURSOR = 'meta:recordMigrationCursor';
const DEFAULT_BATCH = 500;

export interface RecordMigrationOptions {
  /** Images per transaction. */
  recordBatch?: number;
  /** Tests only: called inside each batch's transaction before it commits, with the number of batches committed before it; a throw rolls the batch back, as a kill would. */
  beforeRecordCommit?: (committed: number) => void;
}

interface Store {
  keyv: Keyv;
  images: ImageTables;
  imagePages(after?: string): AsyncGenerator<Array<{ key: string; value: string }>>;
  /** Deletes every key of the store that starts with `prefix`, as keyv takes it (without keyv's namespace). */
  deleteKeysWithPrefix(prefix: string): Promise<void>;
  transaction<T>(work: () => Promise<T>): Promise<T>;
}

/** Returns how many images it moved (0 for a store whose records are already in their tables). */
export async function moveRecords(store: Store, options: RecordMigrationOptions = {}): Promise<number> {
  return runBatchedMigration(store, {
    doneKey: RECORDS_MOVED,
    cursorKey: CURSOR,
    batch: options.recordBatch ?? DEFAULT_BATCH,
    ...(options.beforeRecordCommit ? { beforeCommit: options.beforeRecordCommit } : {}),
    moveBatch: async (keys) => {
      // Read again inside the transaction: another process sharing the file may have moved them since.
      const records = (await store.keyv.getMany<RecordValue>(keys)).filter((r): r is RecordValue => r !== undefined && r !== null);
      const gone: string[] = [];
      for (const record of records) {
        // Never dropped silently: the features step runs first and leaves no record holding features.
        if (record.f16 !== undefined) throw new AppError('STORE_FAILED', `Image ${record.id} still holds its features in its record.`, { details: { id: record.id } });
        const refs = referencesOf(record);
        await store.images.write(upgraded(record, refs));
        gone.push(`img:${record.id}`, `sha:${record.sha256}`, ...new Set(refs.flatMap((r) => (r.ref === undefined ? [] : [`ref:${r.ref}|${record.id}`]))));
      }
      if (gone.length > 0) await store.keyv.deleteMany(gone);
      return records.length;
    },
    finish: async () => {
      // A `sha:` key of an image stored twice points to one of them only; a `ref:` key could outlive its image: gone.
      await store.deleteKeysWithPrefix('sha:');
      await store.deleteKeysWithPrefix('ref:');
    },
  });
}
