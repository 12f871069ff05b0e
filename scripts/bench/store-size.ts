// Bytes per image on disk of a namespace's store.sqlite. `storeSizeRows`: the form before the features table
// (features as base64 inside keyv's JSON) against the current one, for records shaped like the benchmark fixtures'
// and like the bot's (Discord source, message ref, channel and author ids), no thumbnails. `botStoreSizes`: stores
// as the bot keeps them (bot-shaped records, with or without a 128 px WebP thumbnail each) in the previous release's
// form (records, `sha:` and `ref:` keys in keyv, references compact; features and thumbnails in their tables), that
// store once opened (records moved to their tables and vacuumed, record-migration.ts), and the current form written
// through insertMany.
import { createHash } from 'node:crypto';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { FeatureBlocks } from '../../src/index/feature-blobs.js';
import { FEATURES_MIGRATED } from '../../src/index/feature-migration.js';
import { upgraded } from '../../src/index/image-record.js';
import { STORE_COMPACTED } from '../../src/index/store-compaction.js';
import { ThumbnailBlocks } from '../../src/index/thumbnail-blobs.js';
import { FeatureStore, type NewImage } from '../../src/index/store.js';
import { encodeFloat16 } from '../../src/util/float16.js';
import { cachePath, loadAverage, round, type BenchContext, type Row } from './common.js';
import { FEATURE_DIM, baseFeatures, syntheticFeatures } from './vectors.js';

const BATCH = 1_000;
export const STORE_TARGET_BYTES = 2_700;

type Shape = 'fixture' | 'bot';

/** The image `i` as the benchmark fixtures write it, or as the bot would (src/bot/ingest.ts). */
export function syntheticImage(i: number, shape: Shape): NewImage['record'] {
  const sha256 = createHash('sha256').update(`bench/${i}`).digest('hex');
  const addedAt = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
  if (shape === 'fixture') return { sha256, source: `synthetic/${i}.png`, width: 1024, height: 768, addedAt };
  const guildId = '1180000000000000000';
  const channelId = String(1190000000000000000n + BigInt(i % 40));
  const messageId = String(1200000000000000000n + BigInt(i) * 4096n);
  const imageKey = String(1210000000000000000n + BigInt(i) * 4096n);
  const extra = { guildId, channelId, messageId, imageKey, authorId: String(1170000000000000000n + BigInt(i % 500)), postedAt: addedAt };
  return { sha256, source: `discord:${guildId}/${channelId}/${messageId}/${imageKey}`, ref: messageId, extra, width: 1024, height: 768, addedAt };
}

async function fileBytes(path: string): Promise<number> {
  let total = 0;
  for (const suffix of ['', '-wal']) total += (await stat(path + suffix).catch(() => undefined))?.size ?? 0;
  return total;
}

/** The previous release's form, written with keyv as its `insert` did, many images per transaction. */
export async function writeOldForm(path: string, n: number, shape: Shape, features: Float32Array): Promise<void> {
  const adapter = new KeyvSqlite({ uri: `sqlite://${path}` });
  const keyv = new Keyv({ store: adapter, namespace: 'store' });
  await adapter.query('PRAGMA journal_mode=WAL');
  for (let from = 0; from < n; from += BATCH) {
    await adapter.query('BEGIN');
    for (let i = from; i < Math.min(n, from + BATCH); i++) {
      const id = i + 1;
      const { source, ref, extra, ...rest } = syntheticImage(i, shape);
      const reference = { source, addedAt: rest.addedAt, ...(ref === undefined ? {} : { ref }), ...(extra === undefined ? {} : { extra }) };
      const f16 = encodeFloat16(features.subarray(i * FEATURE_DIM, (i + 1) * FEATURE_DIM)).toString('base64');
      await keyv.set(`img:${id}`, { id, ...rest, refs: [reference], f16 });
      await keyv.set(`sha:${rest.sha256}`, id);
      if (ref !== undefined) await keyv.set(`ref:${ref}|${id}`, 1);
    }
    await keyv.set('meta:nextId', Math.min(n, from + BATCH) + 1);
    await adapter.query('COMMIT');
  }
  await keyv.disconnect();
}

/**
 * The previous release's form, written as its `insertMany` did: the record under `img:<id>` in keyv with its
 * references compact, `sha:<sha256>` → id and `ref:<ref>|<id>` keys, features and the thumbnail (if any) in their
 * tables. Features come from `featuresOf` (a batch at a time), the i-th image gets thumbnail i mod the pool's size.
 */
export async function writePreviousForm(path: string, n: number, featuresOf: (from: number, rows: number) => Float32Array, thumbnails: Buffer[]): Promise<void> {
  const adapter = new KeyvSqlite({ uri: `sqlite://${path}` });
  const keyv = new Keyv({ store: adapter, namespace: 'store' });
  await adapter.query('PRAGMA journal_mode=WAL');
  const query = (sql: string, ...args: unknown[]) => adapter.query(sql, ...args);
  const blocks = new FeatureBlocks(query);
  const thumbnailBlocks = new ThumbnailBlocks(query);
  await blocks.createTable();
  await thumbnailBlocks.createTable();
  for (let from = 0; from < n; from += BATCH) {
    const rows = Math.min(BATCH, n - from);
    const features = featuresOf(from, rows);
    await adapter.query('BEGIN');
    const f16: Array<{ id: number; f16: Buffer }> = [];
    const thumbs: Array<{ id: number; bytes: Buffer }> = [];
    for (let i = from; i < from + rows; i++) {
      const id = i + 1;
      const { source, ref, extra, ...rest } = syntheticImage(i, 'bot');
      const reference = { source, addedAt: rest.addedAt, ...(ref === undefined ? {} : { ref }), ...(extra === undefined ? {} : { extra }) };
      await keyv.set(`img:${id}`, upgraded({ id, sha256: rest.sha256, width: rest.width, height: rest.height, addedAt: rest.addedAt }, [reference]));
      await keyv.set(`sha:${rest.sha256}`, id);
      if (ref !== undefined) await keyv.set(`ref:${ref}|${id}`, 1);
      if (thumbnails.length > 0) thumbs.push({ id, bytes: thumbnails[i % thumbnails.length] });
      f16.push({ id, f16: encodeFloat16(features.subarray((i - from) * FEATURE_DIM, (i - from + 1) * FEATURE_DIM)) });
    }
    await blocks.putMany(f16);
    await thumbnailBlocks.putMany(thumbs);
    await keyv.set('meta:nextId', from + rows + 1);
    // The previous release's stores are marked as holding features in their table and compacted.
    await keyv.set(FEATURES_MIGRATED, true);
    await keyv.set(STORE_COMPACTED, true);
    await adapter.query('COMMIT');
  }
  await keyv.disconnect();
}

async function writeCurrent(path: string, n: number, shape: Shape, featuresOf: (from: number, rows: number) => Float32Array, thumbnails: Buffer[] = []): Promise<void> {
  const store = await FeatureStore.open(path);
  for (let from = 0; from < n; from += BATCH) {
    const rows = Math.min(BATCH, n - from);
    const features = featuresOf(from, rows);
    const images: NewImage[] = [];
    for (let i = from; i < from + rows; i++) {
      images.push({
        record: syntheticImage(i, shape),
        features: features.subarray((i - from) * FEATURE_DIM, (i - from + 1) * FEATURE_DIM),
        ...(thumbnails.length > 0 ? { thumbnail: thumbnails[i % thumbnails.length] } : {}),
      });
    }
    await store.exclusive(() => store.insertMany(images));
  }
  await store.close();
}

/** Pages and their unused bytes per table and index of the SQLite file (its dbstat table): where the bytes go. */
export async function tableBytes(path: string): Promise<Record<string, { bytes: number; unused: number }>> {
  const adapter = new KeyvSqlite({ uri: `sqlite://${path}` });
  try {
    const rows = (await adapter.query('SELECT name, sum(pgsize) AS bytes, sum(unused) AS unused FROM dbstat GROUP BY name')) as Array<{ name: string; bytes: number; unused: number }>;
    return Object.fromEntries(rows.map((r) => [r.name, { bytes: r.bytes, unused: r.unused }]));
  } finally {
    await adapter.disconnect();
  }
}

export interface BotStoreSizes {
  images: number;
  thumbnails: boolean;
  /** Mean bytes of the raw thumbnails stored (0 without). */
  thumbnailBytes: number;
  /** Bytes per image: the previous release's form, that store opened (records moved, vacuumed), the current form. */
  previous: number;
  opened: number;
  now: number;
  openSeconds: number;
  writeSeconds: number;
  loadBefore: number[];
  loadAfter: number[];
  /** dbstat of the current form, per image: bytes and unused bytes by table and index. */
  tables: Record<string, { bytes: number; unused: number }>;
  previousTables: Record<string, { bytes: number; unused: number }>;
}

/**
 * A store as the bot keeps it, `n` bot-shaped images with the given features and thumbnails (none: an empty pool),
 * in the previous release's form, opened, and in the current form: bytes per image of each.
 */
export async function botStoreSizes(dir: string, n: number, featuresOf: (from: number, rows: number) => Float32Array, thumbnails: Buffer[]): Promise<BotStoreSizes> {
  const loadBefore = loadAverage();
  await rm(dir, { recursive: true, force: true });
  const previousPath = join(dir, 'previous', 'store.sqlite');
  await mkdir(join(dir, 'previous'), { recursive: true });
  await writePreviousForm(previousPath, n, featuresOf, thumbnails);
  const previous = (await fileBytes(previousPath)) / n;
  const previousTables = perImage(await tableBytes(previousPath), n);
  let start = performance.now();
  await (await FeatureStore.open(previousPath)).close();
  const openSeconds = (performance.now() - start) / 1000;
  const opened = (await fileBytes(previousPath)) / n;
  await rm(join(dir, 'previous'), { recursive: true, force: true });
  const currentPath = join(dir, 'current', 'store.sqlite');
  start = performance.now();
  await writeCurrent(currentPath, n, 'bot', featuresOf, thumbnails);
  const writeSeconds = (performance.now() - start) / 1000;
  const now = (await fileBytes(currentPath)) / n;
  const tables = perImage(await tableBytes(currentPath), n);
  await rm(dir, { recursive: true, force: true });
  let thumbnailBytes = 0;
  for (let i = 0; i < n && thumbnails.length > 0; i++) thumbnailBytes += thumbnails[i % thumbnails.length].length;
  return {
    images: n,
    thumbnails: thumbnails.length > 0,
    thumbnailBytes: round(thumbnailBytes / n),
    previous: round(previous),
    opened: round(opened),
    now: round(now),
    openSeconds: round(openSeconds, 1),
    writeSeconds: round(writeSeconds, 1),
    loadBefore,
    loadAfter: loadAverage(),
    tables,
    previousTables,
  };
}

function perImage(tables: Record<string, { bytes: number; unused: number }>, n: number): Record<string, { bytes: number; unused: number }> {
  return Object.fromEntries(Object.entries(tables).map(([name, t]) => [name, { bytes: round(t.bytes / n), unused: round(t.unused / n) }]));
}

/** The rows of `botStoreSizes`' figures. */
export function botStoreRows(sizes: BotStoreSizes, featuresLabel: string): Row[] {
  const where = (tables: BotStoreSizes['tables']) => Object.entries(tables).map(([name, t]) => `${name} ${t.bytes} B (${t.unused} unused)`).join(', ');
  const label = sizes.images >= 1e6 ? `${sizes.images / 1e6}M` : `${sizes.images / 1e3}k`;
  return [{
    suite: 'memory',
    metric: `store bytes per image at ${label}, bot-shaped records, ${featuresLabel}, ${sizes.thumbnails ? `thumbnails (${sizes.thumbnailBytes} B each as WebP)` : 'no thumbnails'}`,
    value: sizes.now,
    unit: 'B',
    target: sizes.thumbnails ? undefined : { op: '<=', value: STORE_TARGET_BYTES },
    note: `previous release's form ${sizes.previous} B; that store opened (records moved to their tables, vacuumed) ${sizes.opened} B in ${sizes.openSeconds} s; written through insertMany in ${sizes.writeSeconds} s; pages per image now: ${where(sizes.tables)}; before: ${where(sizes.previousTables)}`,
  }];
}

/** The real features cycled: real sparsity (a third of MobileNetV2's ReLU6 averages are exactly zero). */
function cycled(base: Float32Array[], n: number): Float32Array {
  return realFeatures(base, 0, n);
}

/** Images from..from+rows of the real features cycled. */
export function realFeatures(base: Float32Array[], from: number, rows: number): Float32Array {
  const out = new Float32Array(rows * FEATURE_DIM);
  for (let i = 0; i < rows; i++) out.set(base[(from + i) % base.length], i * FEATURE_DIM);
  return out;
}

function zeroShare(features: Float32Array): number {
  let zeros = 0;
  for (const value of features) if (value === 0) zeros += 1;
  return zeros / features.length;
}

export async function storeSizeRows(ctx: BenchContext): Promise<{ rows: Row[]; detail: Record<string, Record<string, number>> }> {
  const n = ctx.quick ? 2_000 : 20_000;
  const base = await baseFeatures(ctx);
  const synthetic = syntheticFeatures(base, n, 31);
  const real = cycled(base, n);
  const cases = [
    { name: 'fixtureSynthetic', shape: 'fixture' as const, features: synthetic, label: `fixture-shaped records, synthetic features (${round(100 * zeroShare(synthetic), 1)} % zeros)` },
    { name: 'fixtureReal', shape: 'fixture' as const, features: real, label: `fixture-shaped records, real features (${round(100 * zeroShare(real), 1)} % zeros)` },
    { name: 'botReal', shape: 'bot' as const, features: real, label: 'bot-shaped records (Discord source, ref, ids), real features' },
  ];
  const dir = cachePath(ctx, 'store-size');
  const rows: Row[] = [];
  const detail: Record<string, Record<string, number>> = {};
  for (const { name, shape, features, label } of cases) {
    await rm(dir, { recursive: true, force: true });
    const old = join(dir, 'old', 'store.sqlite');
    await mkdir(join(dir, 'old'), { recursive: true });
    await writeOldForm(old, n, shape, features);
    const oldBytes = (await fileBytes(old)) / n;
    let start = performance.now();
    await (await FeatureStore.open(old)).close();
    const migrateSeconds = (performance.now() - start) / 1000;
    const migratedBytes = (await fileBytes(old)) / n;
    const current = join(dir, 'current', 'store.sqlite');
    start = performance.now();
    await writeCurrent(current, n, shape, (from, rows) => features.subarray(from * FEATURE_DIM, (from + rows) * FEATURE_DIM));
    const writeSeconds = (performance.now() - start) / 1000;
    const currentBytes = (await fileBytes(current)) / n;
    detail[name] = { old: round(oldBytes), migrated: round(migratedBytes), current: round(currentBytes), migrateSeconds: round(migrateSeconds, 1), writeSeconds: round(writeSeconds, 1) };
    rows.push({
      suite: 'memory',
      metric: `store bytes per image, ${label}`,
      value: round(currentBytes),
      unit: 'B',
      target: { op: '<=', value: STORE_TARGET_BYTES },
      note: `${n} images, no thumbnails; previous form (base64 in keyv's JSON) ${round(oldBytes)} B; that store opened (migrated, vacuumed) ${round(migratedBytes)} B in ${round(migrateSeconds, 1)} s; written through insertMany in ${round(writeSeconds, 1)} s`,
    });
  }
  await rm(dir, { recursive: true, force: true });
  return { rows, detail };
}
