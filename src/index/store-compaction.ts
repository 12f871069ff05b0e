import type Keyv from 'keyv';
import { referencesOf, upgraded, type RecordValue } from './image-record.js';
import type { ThumbnailBlocks } from './thumbnail-blobs.js';

/**
 * Brings a store written before thumbnails had a table of their own to the compact form: each image's thumbnail
 * (`thumb:<id>`, base64 in keyv's JSON) moves to the `thumbnails` table as raw bytes (thumbnail-blobs.ts) and its
 * record is rewritten with compact references (image-record.ts). It goes in batches of images in id-key order: one
 * transaction moves a batch's thumbnails, rewrites its records and saves the cursor, so a process killed mid-way
 * leaves each image wholly in one form or the other and the next open carries on from the cursor. `meta:compactStore`
 * marks a finished store, so later opens read one key. The caller vacuums afterwards (the freed pages stay in the
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
  if ((await store.keyv.get(STORE_COMPACTED)) === true) return 0;
  const batch = options.compactionBatch ?? DEFAULT_BATCH;
  const cursor = await store.keyv.get<string>(CURSOR);
  let moved = 0;
  let committed = 0;
  let pending: string[] = [];
  const flush = async (): Promise<void> => {
    const rows = pending;
    pending = [];
    const keys = rows.map((key) => key.slice(key.indexOf(':') + 1));
    await store.transaction(async () => {
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
      moved += ids.length;
      // The cursor is the full key (keyv's namespace included), as imagePages takes it.
      await store.keyv.set(CURSOR, rows[rows.length - 1]);
      options.beforeCompactionCommit?.(committed);
    });
    committed += 1;
  };
  for await (const rows of store.imagePages(cursor)) {
    for (const row of rows) {
      pending.push(row.key);
      if (pending.length === batch) await flush();
    }
  }
  if (pending.length > 0) await flush();
  await store.transaction(async () => {
    // A thumbnail whose image is gone (none should be: they are deleted together) would otherwise stay for good.
    const orphans = await store.keysWithPrefix('thumb:');
    if (orphans.length > 0) await store.keyv.deleteMany(orphans);
    await store.keyv.set(STORE_COMPACTED, true);
    await store.keyv.delete(CURSOR);
  });
  return moved;
}
