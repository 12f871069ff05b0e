// Bytes per image on disk of a namespace's store.sqlite: the previous form (features as base64 inside keyv's JSON)
// against the current one (float16 BLOBs, feature-blobs.ts), for records shaped like the benchmark fixtures' and
// like the bot's (Discord source, message ref, channel and author ids), and a store of the previous form once
// opened (migrated and vacuumed). Thumbnails are left out: the bot stores one per image (a 128 px WebP, a few KB)
// in either form.
import { createHash } from 'node:crypto';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { FeatureStore, type NewImage } from '../../src/index/store.js';
import { encodeFloat16 } from '../../src/util/float16.js';
import { cachePath, round, type BenchContext, type Row } from './common.js';
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

async function writeCurrent(path: string, n: number, shape: Shape, features: Float32Array): Promise<void> {
  const store = await FeatureStore.open(path);
  for (let from = 0; from < n; from += BATCH) {
    const images: NewImage[] = [];
    for (let i = from; i < Math.min(n, from + BATCH); i++) images.push({ record: syntheticImage(i, shape), features: features.subarray(i * FEATURE_DIM, (i + 1) * FEATURE_DIM) });
    await store.exclusive(() => store.insertMany(images));
  }
  await store.close();
}

/** The real features cycled: real sparsity (a third of MobileNetV2's ReLU6 averages are exactly zero). */
function cycled(base: Float32Array[], n: number): Float32Array {
  const out = new Float32Array(n * FEATURE_DIM);
  for (let i = 0; i < n; i++) out.set(base[i % base.length], i * FEATURE_DIM);
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
    await writeCurrent(current, n, shape, features);
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
