import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { AppError } from '../errors.js';
import { encodeFloat16 } from '../util/float16.js';
import { FeatureBlocks, type FeaturePage } from './feature-blobs.js';
import { migrateFeatures, type MigrationOptions } from './feature-migration.js';
import { ImageTables } from './image-tables.js';
import { moveRecords, type RecordMigrationOptions } from './record-migration.js';
import { compactStore, type CompactionOptions } from './store-compaction.js';
import { ThumbnailBlocks } from './thumbnail-blobs.js';
import { FeedbackStore } from './feedback-store.js';
import {
  referencesOf,
  throughReference,
  toStored,
  upgraded,
  withoutFeatures,
  type ImageRecord,
  type ImageReference,
  type RecordValue,
  type ReferenceRemoval,
  type StoredImage,
} from './image-record.js';

// The record types live in image-record.ts; the store's users find them here too, beside the store that keeps them.
export { referenceViews, throughReference, type ImageRecord, type ImageReference, type RecordValue, type ReferenceRemoval, type StoredImage } from './image-record.js';

const KEYV_NAMESPACE = 'store';
const SCAN_PAGE = 500;

/** What `insertMany` stores per image. */
export interface NewImage {
  record: Omit<ImageRecord, 'id' | 'refs'>;
  features: Float32Array;
  thumbnail?: Uint8Array;
}

/**
 * The feature store of one namespace: one SQLite file with the image records, the duplicate check (by sha256) and
 * the lookup by caller key in tables of their own (`images`, `image_refs`: image-tables.ts), a `features` table of
 * float16 BLOBs (feature-blobs.ts) and a `thumbnails` table of small WebPs (thumbnail-blobs.ts); keyv keeps the
 * small values in the same file (`meta:<name>`, the relevance feedback). An image counts as stored once the
 * transaction that writes its record, features and thumbnail has committed.
 */
export class FeatureStore {
  private queue: Promise<unknown> = Promise.resolve();
  private feedbackStore: FeedbackStore | undefined;

  private readonly blocks: FeatureBlocks;
  private readonly thumbnails: ThumbnailBlocks;
  private readonly images: ImageTables;

  private constructor(
    private readonly keyv: Keyv,
    private readonly adapter: KeyvSqlite,
    private readonly table: string,
  ) {
    this.blocks = new FeatureBlocks((sql, ...args) => this.adapter.query(sql, ...args));
    this.thumbnails = new ThumbnailBlocks((sql, ...args) => this.adapter.query(sql, ...args));
    this.images = new ImageTables((sql, ...args) => this.adapter.query(sql, ...args));
  }

  /**
   * Opens the file and finishes bringing a store of an earlier form to the current one, if anything is left to do:
   * features out of the records (feature-migration.ts), then thumbnails to their table and records compact
   * (store-compaction.ts), then records out of keyv into their tables (record-migration.ts). Each resumes where a
   * killed process left it; the file is vacuumed once after them.
   */
  static async open(path: string, options: MigrationOptions & CompactionOptions & RecordMigrationOptions = {}): Promise<FeatureStore> {
    await mkdir(dirname(path), { recursive: true });
    const adapter = new KeyvSqlite({ uri: `sqlite://${path}`, busyTimeout: 10_000 });
    const keyv = new Keyv({ store: adapter, namespace: KEYV_NAMESPACE });
    let errorEvent: unknown;
    keyv.on('error', (error: unknown) => {
      errorEvent = error;
    });
    try {
      // WAL keeps readers off the writer's back; NORMAL sync survives a killed process (what we promise).
      await adapter.query('PRAGMA journal_mode=WAL');
      await adapter.query('PRAGMA synchronous=NORMAL');
    } catch (error) {
      throw new AppError('STORE_FAILED', `Cannot open the store at ${path}.`, { cause: errorEvent ?? error });
    }
    const store = new FeatureStore(keyv, adapter, adapter.opts.table ?? 'keyv');
    try {
      await store.blocks.createTable();
      await store.thumbnails.createTable();
      await store.images.createTables();
      let vacuum = false;
      await migrateFeatures(
        {
          keyv,
          blocks: store.blocks,
          imagePages: (after) => store.imagePages(after),
          transaction: (work) => store.transaction(work),
          // Once, after both steps: vacuuming a large store takes minutes.
          vacuum: async () => void (vacuum = true),
        },
        options,
      );
      const compacted = await compactStore(
        {
          keyv,
          thumbnails: store.thumbnails,
          imagePages: (after) => store.imagePages(after),
          keysWithPrefix: async (prefix) => (await store.keysAfterPrefix(`${KEYV_NAMESPACE}:${prefix}`)).map((key) => `${prefix}${key}`),
          transaction: (work) => store.transaction(work),
        },
        options,
      );
      const moved = await moveRecords(
        {
          keyv,
          images: store.images,
          imagePages: (after) => store.imagePages(after),
          deleteKeysWithPrefix: (prefix) => store.deleteKeysWithPrefix(`${KEYV_NAMESPACE}:${prefix}`),
          transaction: (work) => store.transaction(work),
        },
        options,
      );
      // The base64, the longer records and the keys gone leave free pages that SQLite would only reuse, never
      // return: one VACUUM gives them back. It is a transaction of its own, so a kill during it leaves the migrated
      // store as it was, just larger; so does a reader in another process, which makes it fail (SQLITE_BUSY) without harm.
      if (vacuum || compacted > 0 || moved > 0) await adapter.query('VACUUM').catch(() => undefined);
    } catch (error) {
      await keyv.disconnect().catch(() => undefined);
      throw error;
    }
    return store;
  }

  /** Runs `task` after every earlier exclusive task: one writer at a time keeps the transactions apart. */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The stored image with these bytes (the newest, if an import stored them twice), if any. */
  async findBySha(sha256: string): Promise<number | undefined> {
    return this.images.findBySha(sha256);
  }

  /**
   * Allocates the next id and stores the image, with `source`, `extra` and `ref` as its first reference, in one
   * transaction. Call inside `exclusive`.
   */
  async insert(record: Omit<ImageRecord, 'id' | 'refs'>, features: Float32Array, thumbnail?: Uint8Array): Promise<ImageRecord> {
    return (await this.insertMany([{ record, features, ...(thumbnail ? { thumbnail } : {}) }]))[0];
  }

  /**
   * Stores several images with consecutive new ids in one transaction (what a bulk import needs: the features of
   * 8 neighbouring ids share one row, written once). No duplicate check. Call inside `exclusive`.
   */
  async insertMany(images: NewImage[]): Promise<ImageRecord[]> {
    return this.transaction(async () => {
      const first = await this.nextId();
      const out: ImageRecord[] = [];
      const f16: Array<{ id: number; f16: Buffer }> = [];
      const thumbnails: Array<{ id: number; bytes: Uint8Array }> = [];
      for (const [i, { record, features, thumbnail }] of images.entries()) {
        const id = first + i;
        const reference: ImageReference = { source: record.source, addedAt: record.addedAt, ...(record.ref === undefined ? {} : { ref: record.ref }), ...(record.extra === undefined ? {} : { extra: record.extra }) };
        const value = upgraded({ id, sha256: record.sha256, width: record.width, height: record.height, addedAt: record.addedAt }, [reference]);
        await this.images.write(value);
        if (thumbnail) thumbnails.push({ id, bytes: thumbnail });
        f16.push({ id, f16: encodeFloat16(features) });
        out.push(withoutFeatures(value));
      }
      await this.blocks.putMany(f16);
      await this.thumbnails.putMany(thumbnails);
      await this.keyv.set('meta:nextId', first + images.length);
      return out;
    });
  }

  /**
   * Adds a reference to a stored image in one transaction, unless it already has one with the same source (a
   * post read again). Returns the record as it is now, or undefined if the image is gone. Call inside `exclusive`.
   */
  async addReference(id: number, reference: ImageReference): Promise<{ record: ImageRecord; added: boolean } | undefined> {
    return this.transaction(async () => {
      const value = await this.images.get(id);
      if (!value) return undefined;
      const refs = referencesOf(value);
      if (refs.some((r) => r.source === reference.source)) return { record: withoutFeatures(value), added: false };
      const updated = upgraded(value, [...refs, reference]);
      await this.images.write(updated, value);
      return { record: withoutFeatures(updated), added: true };
    });
  }

  /**
   * Removes the image's references that `select` picks, in one transaction; the image itself (features,
   * thumbnail, duplicate key) goes with its last reference. Call inside `exclusive`.
   */
  async removeReferences(id: number, select: (reference: ImageReference) => boolean): Promise<ReferenceRemoval> {
    return this.transaction(async () => {
      const value = await this.images.get(id);
      if (!value) return { removed: [], imageDeleted: false };
      const record = withoutFeatures(value);
      const refs = referencesOf(value);
      const gone = refs.filter(select);
      if (gone.length === 0) return { removed: [], imageDeleted: false };
      const kept = refs.filter((r) => !gone.includes(r));
      if (kept.length === 0) await this.deleteImage(value);
      else await this.images.write(upgraded(value, kept), value);
      return { removed: gone.map((r) => throughReference(record, r)), imageDeleted: kept.length === 0 };
    });
  }

  /** The id the next inserted image gets; ids are never reused, so it changes with every insert and only then. */
  async nextId(): Promise<number> {
    return (await this.keyv.get<number>('meta:nextId')) ?? 1;
  }

  async get(id: number): Promise<StoredImage | undefined> {
    const value = await this.images.get(id);
    return value ? toStored(value, await this.blocks.get(id)) : undefined;
  }

  async getRecords(ids: number[]): Promise<Map<number, ImageRecord>> {
    const out = new Map<number, ImageRecord>();
    for (const value of await this.images.getMany(ids)) out.set(value.id, withoutFeatures(value));
    return out;
  }

  /** Deletes the image with every reference. Call inside `exclusive`. */
  async delete(id: number): Promise<ImageRecord | undefined> {
    return this.transaction(async () => {
      const value = await this.images.get(id);
      if (!value) return undefined;
      await this.deleteImage(value);
      return withoutFeatures(value);
    });
  }

  /** The namespace's relevance feedback, in this file: a judgement leaves with either image it names (feedback-store.ts). */
  get feedback(): FeedbackStore {
    return (this.feedbackStore ??= new FeedbackStore(
      this.keyv,
      (sql, ...args) => this.adapter.query(sql, ...args),
      `${KEYV_NAMESPACE}:`,
      this.table,
      async (id) => (await this.get(id))?.features,
      (id) => this.images.has(id),
      (work) => this.exclusive(() => this.transaction(work)),
    ));
  }

  /** The image's record (its references' caller keys with it), features, thumbnail and judgements. */
  private async deleteImage(value: RecordValue): Promise<void> {
    await this.feedback.removeImage(value.id);
    await this.images.remove(value);
    await this.blocks.delete(value.id);
    await this.thumbnails.delete(value.id);
  }

  /** Every stored image in id order, read a page at a time so memory stays flat. */
  async *scan(): AsyncGenerator<StoredImage> {
    for await (const records of this.images.pages(SCAN_PAGE)) {
      const features = await this.blocks.getMany(records.map((r) => r.id));
      for (const record of records) yield toStored(record, features.get(record.id));
    }
  }

  /** Every stored image's record without its features (what listing references needs), in id order. */
  async *records(): AsyncGenerator<ImageRecord> {
    for await (const records of this.images.pages(SCAN_PAGE)) for (const record of records) yield withoutFeatures(record);
  }

  /**
   * Every stored image's features in id order, a page (≤ 512 images) at a time as the float16 bytes stored: what
   * a retrain streams through, at any collection size, without holding every feature at once.
   */
  async *featurePages(dim: number): AsyncGenerator<FeaturePage> {
    for await (const page of this.blocks.pages()) {
      if (page.width !== dim * 2) {
        throw new AppError('STORE_FAILED', `Image ${page.ids[0]} in the store has ${page.width / 2} features where ${dim} were expected.`, {
          details: { id: page.ids[0], expected: dim },
        });
      }
      yield page;
    }
  }

  /** The image's thumbnail (a small WebP), if it has one. */
  async getThumbnail(id: number): Promise<Buffer | undefined> {
    return this.thumbnails.get(id);
  }

  /** The ids stored under a caller key (e.g. every image of one message), in id order. */
  async idsByRef(ref: string): Promise<number[]> {
    return this.images.idsByRef(ref);
  }

  /** Every stored id in order, reading ids only (no record is decoded), for reconciling an index at start-up. */
  async ids(): Promise<number[]> {
    return this.images.ids();
  }

  /**
   * The raw keyv rows of every image key (`img:<id>`, where records were kept before their table) in key order
   * after `after` (a full key), a page at a time: what bringing a store of an earlier form up to date reads.
   */
  private async *imagePages(after = `${KEYV_NAMESPACE}:img:`): AsyncGenerator<Array<{ key: string; value: string }>> {
    const prefix = `${KEYV_NAMESPACE}:img:`;
    for (;;) {
      const rows = (await this.adapter.query(
        `SELECT key, value FROM ${this.table} WHERE key > ? AND key < ? ORDER BY key LIMIT ?`,
        after,
        `${prefix}\uffff`,
        SCAN_PAGE,
      )) as Array<{ key: string; value: string }>;
      if (rows.length === 0) return;
      yield rows;
      after = rows[rows.length - 1].key;
    }
  }

  /** What follows `prefix` in every keyv key that starts with it: a range scan on the primary key. */
  private async keysAfterPrefix(prefix: string): Promise<string[]> {
    const rows = (await this.adapter.query(
      `SELECT key FROM ${this.table} WHERE key > ? AND key < ?`,
      prefix,
      `${prefix}\uffff`,
    )) as Array<{ key: string }>;
    return rows.map((row) => row.key.slice(prefix.length));
  }

  /** Deletes every keyv key that starts with `prefix` (a full key): one range delete on the primary key. */
  private async deleteKeysWithPrefix(prefix: string): Promise<void> {
    await this.adapter.query(`DELETE FROM ${this.table} WHERE key > ? AND key < ?`, prefix, `${prefix}\uffff`);
  }

  async count(): Promise<number> {
    return this.images.count();
  }

  async getMeta<T>(name: string): Promise<T | undefined> {
    return (await this.keyv.get<T>(`meta:${name}`)) ?? undefined;
  }

  async setMeta(name: string, value: unknown): Promise<void> {
    await this.keyv.set(`meta:${name}`, value);
  }

  async deleteMeta(name: string): Promise<void> {
    await this.keyv.delete(`meta:${name}`);
  }

  async close(): Promise<void> {
    await this.queue;
    await this.keyv.disconnect();
  }

  /** Runs `work` in one SQLite transaction. Called by the migration before the store is handed out. */
  private async transaction<T>(work: () => Promise<T>): Promise<T> {
    await this.adapter.query('BEGIN IMMEDIATE');
    try {
      const result = await work();
      await this.adapter.query('COMMIT');
      return result;
    } catch (error) {
      await this.adapter.query('ROLLBACK').catch(() => undefined);
      throw new AppError('STORE_FAILED', 'Writing to the image store failed.', { cause: error });
    }
  }
}
