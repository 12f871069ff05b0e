// The namespace a serving process is measured on at the largest index size (1M in a full run): the retrained
// fixture's VAE, the query suite's index over that many latents, and one stored image (record, features and
// thumbnail, as the bot stores them) per indexed id.
import { copyFile, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { preprocessFit } from '../../src/ml/pipeline.js';
import type { ActiveKey } from '../../src/index/active-key.js';
import { namespaceDir, vaeDir } from '../../src/index/namespace.js';
import { FeatureStore } from '../../src/index/store.js';
import { indexFiles } from '../../src/index/vector-index.js';
import { preprocessImage } from '../../src/ml/image.js';
import { thumbnailFromPixels } from '../../src/ml/thumbnail.js';
import { BENCH_NAMESPACE as NAMESPACE, cachePath, loadAverage, round, type BenchContext } from './common.js';
import { ensureIndex, indexDir, indexSizes, INDEX_KEY_ID } from './indexes.js';
import { trainedNamespace } from './retrain.js';
import { syntheticImage, tableBytes } from './store-size.js';
import { uploads } from './uploads.js';
import { FEATURE_DIM, baseFeatures, syntheticFeatures } from './vectors.js';

export const WRITE_BATCH = 1_000;
const FEATURE_SEED = 500;
/**
 * The fixture's form; a cached fixture of another version is rebuilt. 1: fixture-shaped records and features.
 * 2: bot-shaped records (Discord source, message ref, guild/channel/author ids) and a thumbnail per image.
 * 3: the compact store: thumbnails as raw bytes in their table, compact references (store-compaction.ts).
 * 4: records, duplicate check and caller keys in tables of their own, not keyv (image-tables.ts).
 */
const SERVING_VERSION = 4;

export interface ServingNamespace {
  dataDir: string;
  images: number;
}

/** What ready.json records about the cached fixture: how it was built and what its thumbnails weigh. */
export interface ServingBuild {
  version: number;
  images: number;
  features: number;
  /** Bytes of the thumbnails as stored (raw WebP, in the `thumbnails` table; its page overhead not counted). */
  thumbnailBytes: number;
  /** Distinct real thumbnails the images cycle through. */
  thumbnailPool: number;
  writeSeconds: number;
  loadBefore: number[];
  loadAfter: number[];
  /** The SQLite file's pages by table and index after writing: bytes, and bytes of them unused. */
  tables: Record<string, { bytes: number; unused: number }>;
}

/**
 * One stored image per indexed id, as the bot stores it: a bot-shaped record, 1280 synthetic float16 features
 * (drawn around the real ones, as the retrain stores are) and a real 128 px WebP thumbnail (the engine's, made from
 * the bench uploads and cycled), written through the store API in batches of 1,000 per transaction: a store users
 * would have, so cold start, RSS and size on disk are measured on real rows. Built once, cached.
 */
export async function servingNamespace(ctx: BenchContext): Promise<ServingNamespace> {
  const sizes = indexSizes(ctx);
  const n = sizes[sizes.length - 1];
  const dataDir = cachePath(ctx, `serving-${n}`);
  if ((await servingBuild(dataDir))?.version === SERVING_VERSION) return { dataDir, images: n };
  const build = await servingStore(ctx, dataDir, n);

  ctx.log(`memory: adding the VAE and the ${n}-vector index to the stored images (cached in ${dataDir})`);
  const trained = namespaceDir((await trainedNamespace(ctx)).dataDir, NAMESPACE);
  const source = await FeatureStore.open(join(trained, 'store.sqlite'));
  const key = await source.getMeta<ActiveKey>('activeKey');
  await source.close();
  if (key?.kind !== 'vae') throw new Error('the retrained fixture has no VAE');
  const dir = namespaceDir(dataDir, NAMESPACE);
  await cp(vaeDir(trained, key.vaeId), vaeDir(dir, key.vaeId), { recursive: true });
  const store = await FeatureStore.open(join(dir, 'store.sqlite'));
  await store.setMeta('activeKey', key);
  await store.close();

  await ensureIndex(ctx, n);
  const files = await indexFiles(indexDir(ctx, n), INDEX_KEY_ID);
  const manifest = JSON.parse(await readFile(files.manifest, 'utf8')) as { keyId: string; graph: { file: string }; flat: { file: string } };
  const keyId = `vae-${key.vaeId}`;
  const rename = (file: string) => file.replace(`index-${INDEX_KEY_ID}.`, `index-${keyId}.`);
  await copyFile(files.graph!, join(dir, rename(basename(files.graph!))));
  await copyFile(files.flat!, join(dir, rename(basename(files.flat!))));
  const renamed = { ...manifest, keyId, graph: { ...manifest.graph, file: rename(manifest.graph.file) }, flat: { ...manifest.flat, file: rename(manifest.flat.file) }, storeNextId: n };
  await writeFile(join(dir, `index-${keyId}.json`), JSON.stringify(renamed));
  await writeFile(join(dataDir, 'ready.json'), JSON.stringify(build));
  return { dataDir, images: n };
}

/**
 * The fixture's store.sqlite, written first (it needs neither the VAE nor the index, so it can be written while
 * they are built) and cached on its own (store.json), so that a run interrupted after it keeps it.
 */
export async function servingStore(ctx: BenchContext, dataDir: string, n: number): Promise<ServingBuild> {
  const done = join(dataDir, 'store.json');
  const cached = JSON.parse((await readFile(done, 'utf8').catch(() => undefined)) ?? '{}') as Partial<ServingBuild>;
  if (cached.version === SERVING_VERSION) return cached as ServingBuild;
  await rm(dataDir, { recursive: true, force: true });
  ctx.log(`memory: writing ${n} images to a store (cached in ${dataDir})`);
  const path = join(namespaceDir(dataDir, NAMESPACE), 'store.sqlite');
  const thumbnails = await thumbnailPool(ctx);
  const loadBefore = loadAverage();
  const { seconds, thumbnailBytes } = await writeImages(ctx, path, n, thumbnails);
  const build: ServingBuild = {
    version: SERVING_VERSION,
    images: n,
    features: FEATURE_DIM,
    thumbnailBytes,
    thumbnailPool: thumbnails.length,
    writeSeconds: round(seconds, 1),
    loadBefore,
    loadAfter: loadAverage(),
    tables: await tableBytes(path),
  };
  await writeFile(done, JSON.stringify(build));
  return build;
}

/** How the serving fixture in `dataDir` was built, if one is there (other fixtures' ready.json have no version). */
export async function servingBuild(dataDir: string): Promise<ServingBuild | undefined> {
  const text = await readFile(join(dataDir, 'ready.json'), 'utf8').catch(() => undefined);
  const build = text ? (JSON.parse(text) as Partial<ServingBuild>) : undefined;
  return typeof build?.version === 'number' ? (build as ServingBuild) : undefined;
}

/** The engine's thumbnails of the bench uploads (photo-like, 0.3-12 MP, every format): what the bot would store. */
export async function thumbnailPool(ctx: BenchContext): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const upload of await uploads(ctx, ctx.quick ? 8 : 96)) {
    out.push(await thumbnailFromPixels((await preprocessImage(upload.bytes, { fit: preprocessFit() })).pixels));
  }
  return out;
}

/** Ids 0..n-1, the query suite's index labels; the i-th image gets thumbnail i mod the pool's size. */
async function writeImages(
  ctx: BenchContext,
  path: string,
  n: number,
  thumbnails: Buffer[],
): Promise<{ seconds: number; thumbnailBytes: number }> {
  const base = await baseFeatures(ctx);
  const start = performance.now();
  const store = await FeatureStore.open(path);
  await store.setMeta('nextId', 0);
  let thumbnailBytes = 0;
  for (let from = 0; from < n; from += WRITE_BATCH) {
    const rows = Math.min(WRITE_BATCH, n - from);
    const features = syntheticFeatures(base, rows, FEATURE_SEED + from);
    const images = Array.from({ length: rows }, (_, i) => {
      const id = from + i;
      const thumbnail = thumbnails[id % thumbnails.length];
      thumbnailBytes += thumbnail.length;
      return { record: syntheticImage(id, 'bot'), features: features.subarray(i * FEATURE_DIM, (i + 1) * FEATURE_DIM), thumbnail };
    });
    await store.exclusive(() => store.insertMany(images));
    if ((from + rows) % 100_000 === 0) ctx.log(`memory: ${from + rows} of ${n} images written (${round((performance.now() - start) / 1000, 1)} s)`);
  }
  await store.close();
  return { seconds: (performance.now() - start) / 1000, thumbnailBytes };
}
