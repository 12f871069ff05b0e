import type Keyv from 'keyv';

/**
 * The loop both start-up migrations of the image records share (store-compaction.ts, record-migration.ts): the
 * images go in batches in id-key order, and one transaction moves a batch and saves the cursor, so a process killed
 * mid-way leaves each image wholly in one form or the other and the next open carries on from the cursor. A last
 * transaction runs `finish`, sets `doneKey` (later opens read that one key) and drops the cursor.
 */
export interface BatchedMigration {
  /** Set to true once the migration has finished. */
  doneKey: string;
  cursorKey: string;
  batch: number;
  /** Moves one batch, given its keys as keyv takes them (without keyv's namespace); returns how many images it moved. Runs inside the batch's transaction. */
  moveBatch(keys: string[]): Promise<number>;
  /** Runs inside the last transaction, before `doneKey` is set. */
  finish(): Promise<void>;
  /** Tests only: called inside each batch's transaction before it commits, with the number of batches committed before it; a throw rolls the batch back, as a kill would. */
  beforeCommit?: (committed: number) => void;
}

interface Store {
  keyv: Keyv;
  imagePages(after?: string): AsyncGenerator<Array<{ key: string; value: string }>>;
  transaction<T>(work: () => Promise<T>): Promise<T>;
}

/** Returns how many images it moved (0 for a store the migration has already finished). */
export async function runBatchedMigration(store: Store, migration: BatchedMigration): Promise<number> {
  if ((await store.keyv.get(migration.doneKey)) === true) return 0;
  const cursor = await store.keyv.get<string>(migration.cursorKey);
  let moved = 0;
  let committed = 0;
  let pending: string[] = [];
  const flush = async (): Promise<void> => {
    const rows = pending;
    pending = [];
    await store.transaction(async () => {
      moved += await migration.moveBatch(rows.map((key) => key.slice(key.indexOf(':') + 1)));
      // The cursor is the full key (keyv's namespace included), as imagePages takes it.
      await store.keyv.set(migration.cursorKey, rows[rows.length - 1]);
      migration.beforeCommit?.(committed);
    });
    committed += 1;
  };
  for await (const rows of store.imagePages(cursor)) {
    for (const row of rows) {
      pending.push(row.key);
      if (pending.length === migration.batch) await flush();
    }
  }
  if (pending.length > 0) await flush();
  await store.transaction(async () => {
    await migration.finish();
    await store.keyv.set(migration.doneKey, true);
    await store.keyv.delete(migration.cursorKey);
  });
  return moved;
}
