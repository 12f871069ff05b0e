// The namespace a serving process is measured on at the largest index size (1M in a full run): the retrained
// fixture's VAE, the query suite's index over that many latents, and one stored image (record and features) per
// indexed id.
import { copyFile, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { namespaceDir, vaeDir, type ActiveKey } from '../../src/index/namespace.js';
import { FeatureStore } from '../../src/index/store.js';
import { indexFiles } from '../../src/index/vector-index.js';
import { BENCH_NAMESPACE as NAMESPACE, cachePath, round, type BenchContext } from './common.js';
import { ensureIndex, indexDir, indexSizes, INDEX_KEY_ID } from './indexes.js';
import { trainedNamespace } from './retrain.js';
import { syntheticImage } from './store-size.js';
import { FEATURE_DIM, baseFeatures, syntheticFeatures } from './vectors.js';

const WRITE_BATCH = 1_000;
const FEATURE_SEED = 500;

/**
 * One stored image per indexed id, with 1280 synthetic float16 features (drawn around the real ones, as the
 * retrain stores are), written through the store API in batches of 1,000 per transaction: a store users would
 * have, so cold start, RSS and size on disk are measured on real rows. Thumbnails are not stored.
 */
export async function servingNamespace(ctx: BenchContext): Promise<{ dataDir: string; images: number }> {
  const sizes = indexSizes(ctx);
  const n = sizes[sizes.length - 1];
  const dataDir = cachePath(ctx, `serving-${n}`);
  const ready = join(dataDir, 'ready.json');
  // A fixture from before the store held features (no `features` in ready.json) is rebuilt.
  const cached = JSON.parse((await readFile(ready, 'utf8').catch(() => undefined)) ?? '{}') as { features?: number };
  if (cached.features === FEATURE_DIM) return { dataDir, images: n };
  await rm(dataDir, { recursive: true, force: true });
  ctx.log(`memory: assembling a ${n}-image namespace (cached in ${dataDir})`);

  const trained = namespaceDir((await trainedNamespace(ctx)).dataDir, NAMESPACE);
  const source = await FeatureStore.open(join(trained, 'store.sqlite'));
  const key = await source.getMeta<ActiveKey>('activeKey');
  await source.close();
  if (key?.kind !== 'vae') throw new Error('the retrained fixture has no VAE');
  const dir = namespaceDir(dataDir, NAMESPACE);
  await mkdir(dir, { recursive: true });
  await cp(vaeDir(trained, key.vaeId), vaeDir(dir, key.vaeId), { recursive: true });

  await ensureIndex(ctx, n);
  const files = await indexFiles(indexDir(ctx, n), INDEX_KEY_ID);
  const manifest = JSON.parse(await readFile(files.manifest, 'utf8')) as { keyId: string; graph: { file: string }; flat: { file: string } };
  const keyId = `vae-${key.vaeId}`;
  const rename = (file: string) => file.replace(`index-${INDEX_KEY_ID}.`, `index-${keyId}.`);
  await copyFile(files.graph!, join(dir, rename(basename(files.graph!))));
  await copyFile(files.flat!, join(dir, rename(basename(files.flat!))));
  const renamed = { ...manifest, keyId, graph: { ...manifest.graph, file: rename(manifest.graph.file) }, flat: { ...manifest.flat, file: rename(manifest.flat.file) }, storeNextId: n };
  await writeFile(join(dir, `index-${keyId}.json`), JSON.stringify(renamed));

  const writeSeconds = await writeImages(ctx, join(dir, 'store.sqlite'), n, key);
  await writeFile(ready, JSON.stringify({ images: n, features: FEATURE_DIM, writeSeconds: round(writeSeconds, 1) }));
  return { dataDir, images: n };
}

/** Ids 0..n-1, the query suite's index labels; returns the seconds the writing took. */
export async function writeImages(ctx: BenchContext, path: string, n: number, key?: ActiveKey): Promise<number> {
  const base = await baseFeatures(ctx);
  const start = performance.now();
  const store = await FeatureStore.open(path);
  if (key) await store.setMeta('activeKey', key);
  await store.setMeta('nextId', 0);
  for (let from = 0; from < n; from += WRITE_BATCH) {
    const rows = Math.min(WRITE_BATCH, n - from);
    const features = syntheticFeatures(base, rows, FEATURE_SEED + from);
    const images = Array.from({ length: rows }, (_, i) => ({
      record: syntheticImage(from + i, 'fixture'),
      features: features.subarray(i * FEATURE_DIM, (i + 1) * FEATURE_DIM),
    }));
    await store.exclusive(() => store.insertMany(images));
    if ((from + rows) % 100_000 === 0) ctx.log(`memory: ${from + rows} of ${n} images written (${round((performance.now() - start) / 1000, 1)} s)`);
  }
  await store.close();
  return (performance.now() - start) / 1000;
}

