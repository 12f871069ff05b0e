// The namespace a serving process is measured on at the largest index size (1M in a full run): the retrained
// fixture's VAE, the query suite's index over that many latents, and one store record per indexed id.
import { copyFile, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import { namespaceDir, vaeDir, type ActiveKey } from '../../src/index/namespace.js';
import { FeatureStore } from '../../src/index/store.js';
import { indexFiles } from '../../src/index/vector-index.js';
import { BENCH_NAMESPACE as NAMESPACE, cachePath, type BenchContext } from './common.js';
import { ensureIndex, indexDir, indexSizes, INDEX_KEY_ID } from './query.js';
import { trainedNamespace } from './retrain.js';

const ROWS_PER_STATEMENT = 400;

/**
 * Records carry no features: serving reads stored features only for a query image that is itself stored, and
 * writing 1M × 1280 float16 values (4.3 GB) through the store would take longer than the benchmark may run.
 * The records are written in the store's own row format in one transaction for the same reason.
 */
export async function servingNamespace(ctx: BenchContext): Promise<{ dataDir: string; images: number }> {
  const sizes = indexSizes(ctx);
  const n = sizes[sizes.length - 1];
  const dataDir = cachePath(ctx, `serving-${n}`);
  const ready = join(dataDir, 'ready.json');
  if (await readFile(ready).catch(() => undefined)) return { dataDir, images: n };
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

  const store = await FeatureStore.open(join(dir, 'store.sqlite'));
  await store.setMeta('activeKey', key);
  await store.setMeta('nextId', n);
  await store.close();
  await writeRecords(join(dir, 'store.sqlite'), n);
  await writeFile(ready, JSON.stringify({ images: n }));
  return { dataDir, images: n };
}

/** Ids 0..n-1, the query suite's index labels. */
async function writeRecords(path: string, n: number): Promise<void> {
  const adapter = new KeyvSqlite({ uri: `sqlite://${path}` });
  const table = adapter.opts.table ?? 'keyv';
  await adapter.query('BEGIN');
  for (let from = 0; from < n; from += ROWS_PER_STATEMENT) {
    const count = Math.min(ROWS_PER_STATEMENT, n - from);
    const params: string[] = [];
    for (let id = from; id < from + count; id++) {
      const record = { id, sha256: id.toString(16).padStart(64, '0'), source: `synthetic/${id}.png`, width: 1024, height: 768, addedAt: new Date(0).toISOString(), f16: '' };
      params.push(`store:img:${id}`, JSON.stringify({ value: record }));
    }
    await adapter.query(`INSERT INTO ${table} (key, value) VALUES ${Array.from({ length: count }, () => '(?, ?)').join(', ')}`, ...params);
  }
  await adapter.query('COMMIT');
  await adapter.disconnect();
}
