// Peak RSS, size on disk and cold start, each in a fresh process: on the retrained 100k collection, and on a 1M
// namespace holding 1M stored images (records, features, thumbnails) around the 1M index (see serving.ts).
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { namespaceDir } from '../../src/index/namespace.js';
import { VectorIndex } from '../../src/index/vector-index.js';
import { BENCH_NAMESPACE as NAMESPACE, bytesToMiB, cachePath, median, round, runChild, type BenchContext, type Row, type SuiteResult } from './common.js';
import { INDEX_KEY_ID, ensureIndex, indexDir, indexSizes } from './indexes.js';
import { trainedNamespace } from './retrain.js';
import { WRITE_BATCH, servingBuild, servingNamespace, thumbnailPool, type ServingBuild } from './serving.js';
import { STORE_TARGET_BYTES, botStoreRows, botStoreSizes, realFeatures, storeSizeRows } from './store-size.js';
import type { ServeResult } from './serve.js';
import { LATENT_DIM, baseFeatures, clusteredLatents } from './vectors.js';

export interface IndexLoadResult {
  /** Until the index answers: its vector file read and checksummed. */
  loadMs: number;
  /** Until its HNSW graph answers: checksum plus hnswlib's read, on another thread. */
  graphMs: number;
}

/** Runs in a child process (see child.ts): loads one of the query suite's indexes and searches it. */
export async function runIndexLoad(args: { dir: string }): Promise<IndexLoadResult> {
  const start = performance.now();
  const index = (await VectorIndex.load(args.dir, INDEX_KEY_ID))!;
  const loadMs = performance.now() - start;
  await index.ready();
  const graphMs = performance.now() - start;
  const queries = clusteredLatents(100, 5);
  for (let q = 0; q < 100; q++) index.search(queries.subarray(q * LATENT_DIM, (q + 1) * LATENT_DIM), 21);
  return { loadMs: round(loadMs, 1), graphMs: round(graphMs, 1) };
}

/** The size of every file under `dir`, or of those whose name matches `only`. */
async function folderBytes(dir: string, only?: RegExp): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && (only?.test(entry.name) ?? true)) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** Cold start and peak RSS of a fresh serving process on one data dir: the median of `reps` runs. */
async function measureServing(ctx: BenchContext, dataDir: string, reps: number) {
  const serves: Array<{ result: ServeResult; maxRssBytes: number; wallMs: number }> = [];
  for (let rep = 0; rep < reps; rep++) {
    serves.push(await runChild<ServeResult>('serve', { dataDir, cacheDir: ctx.cacheDir, quick: ctx.quick, queries: ctx.quick ? 2 : 8 }));
  }
  return {
    serves,
    coldStart: median(serves.map((s) => s.result.coldStartMs)),
    openMs: median(serves.map((s) => s.result.openMs)),
    graphWaitMs: median(serves.map((s) => s.result.graphWaitMs)),
    rss: median(serves.map((s) => s.maxRssBytes)),
    wallMs: median(serves.map((s) => s.wallMs)),
  };
}

/**
 * Bytes per image of a fixture's store.sqlite. The serving fixture stores a thumbnail per image, as the bot does;
 * the store target counts records and features only, so it is checked on the store less the thumbnails' bytes (raw
 * WebP in their table). The pages' overhead and free space around them stays counted (dbstat's, in the note).
 */
function storeRows(label: string, images: number, storeBytes: number, isTarget: boolean, build: ServingBuild | undefined): Row[] {
  if (!build) {
    return [{
      suite: 'memory',
      metric: `store on disk at ${label}, per image (records and float16 features)`,
      value: round(storeBytes / images),
      unit: 'B',
      target: isTarget ? { op: '<=', value: STORE_TARGET_BYTES } : undefined,
      note: `store.sqlite ${bytesToMiB(storeBytes)} MiB; records shaped like the fixtures', no thumbnails`,
    }];
  }
  const thumbnails = build.thumbnailBytes / images;
  const perImage = (bytes = 0) => round(bytes / images);
  const pages = Object.entries(build.tables).map(([name, t]) => `${name} ${perImage(t.bytes)} B (${perImage(t.unused)} unused)`).join(', ');
  return [
    {
      suite: 'memory',
      metric: `store on disk at ${label}, per image (bot-shaped records, float16 features, thumbnails)`,
      value: round(storeBytes / images),
      unit: 'B',
      note: `store.sqlite ${bytesToMiB(storeBytes)} MiB; thumbnails (128 px WebP, raw in their table, ${build.thumbnailPool} real ones cycled) ${round(thumbnails)} B per image; pages per image as written: ${pages}`,
    },
    {
      suite: 'memory',
      metric: `store on disk at ${label}, per image, without the thumbnails`,
      value: round(storeBytes / images - thumbnails),
      unit: 'B',
      target: isTarget ? { op: '<=', value: STORE_TARGET_BYTES } : undefined,
      note: 'the store less its thumbnails\' bytes (the pages\' overhead around them still counted); synthetic features (fewer zeros than real ones: ≈ 500 B more per image)',
    },
    {
      suite: 'memory',
      metric: `${label}-image store written through insertMany, ${WRITE_BATCH} per transaction (once; cached)`,
      value: build.writeSeconds,
      unit: 's',
      note: `${round(images / build.writeSeconds)} images/s; load average ${build.loadBefore.join(' ')} → ${build.loadAfter.join(' ')}`,
    },
  ];
}

export async function benchMemory(ctx: BenchContext): Promise<SuiteResult> {
  const reps = ctx.quick ? 1 : 3;
  const fixtures = [await trainedNamespace(ctx), await servingNamespace(ctx)];
  const rows: Row[] = [];
  const detail: Record<string, unknown> = {};
  for (const [i, fixture] of fixtures.entries()) {
    const isTarget = i === fixtures.length - 1;
    const label = fixture.images >= 1e6 ? `${fixture.images / 1e6}M` : `${fixture.images / 1e3}k`;
    const serving = await measureServing(ctx, fixture.dataDir, reps);
    const nsBytes = await folderBytes(namespaceDir(fixture.dataDir, NAMESPACE));
    detail[`serve${fixture.images}`] = { ...serving, namespaceBytes: nsBytes };
    rows.push({
      suite: 'memory',
      metric: `peak RSS serving ${label} images`,
      value: bytesToMiB(serving.rss),
      unit: 'MiB',
      target: isTarget ? { op: '<=', value: 1536 } : undefined,
      note: 'start, first reply, queries while the graph loads, then 8 more',
    });
    rows.push({
      suite: 'memory',
      metric: `on disk at ${label} (store + index + VAE)`,
      value: bytesToMiB(nsBytes),
      unit: 'MiB',
    });
    const storeBytes = await folderBytes(namespaceDir(fixture.dataDir, NAMESPACE), /^store\.sqlite/);
    const build = await servingBuild(fixture.dataDir);
    rows.push(...storeRows(label, fixture.images, storeBytes, isTarget, build));
    rows.push({
      suite: 'memory',
      metric: `namespace open at ${label} (index vectors read and verified, store reconciled)`,
      value: round(serving.openMs),
      unit: 'ms',
      note: `the HNSW graph answered ${round(serving.graphWaitMs)} ms after the first reply`,
    });
    rows.push({
      suite: 'memory',
      metric: `cold start at ${label} (process start → first reply)`,
      value: round(serving.coldStart),
      unit: 'ms',
      target: isTarget ? { op: '<=', value: 5000 } : undefined,
      note: `namespace open ${round(serving.openMs)} ms; exact search answers until the graph is read; parent-side wall ${round(serving.wallMs)} ms`,
    });
  }

  const indexes = new Map<number, { loadMs: number; rss: number; bytes: number }>();
  for (const n of indexSizes(ctx)) {
    const { bytes } = await ensureIndex(ctx, n);
    const { result, maxRssBytes } = await runChild<IndexLoadResult>('index-load', { dir: indexDir(ctx, n) });
    indexes.set(n, { loadMs: result.loadMs, rss: maxRssBytes, bytes });
    rows.push({
      suite: 'memory',
      metric: `index at ${n / 1e3}k: load (vectors verified and read; the graph after it)`,
      value: result.loadMs,
      unit: 'ms',
      note: `graph ready after ${result.graphMs} ms; ${bytesToMiB(bytes)} MiB of files, ${bytesToMiB(maxRssBytes)} MiB peak RSS`,
    });
  }
  const storeSize = await storeSizeRows(ctx);
  rows.push(...storeSize.rows);
  // A store as the bot keeps it, with a thumbnail per image: the previous release's form, opened, and now.
  const n = ctx.quick ? 2_000 : 20_000;
  const base = await baseFeatures(ctx);
  const botSizes = await botStoreSizes(cachePath(ctx, 'store-size-bot'), n, (from, count) => realFeatures(base, from, count), await thumbnailPool(ctx));
  rows.push(...botStoreRows(botSizes, 'real features'));
  return { rows, detail: { ...detail, indexes: Object.fromEntries(indexes), storeSize: storeSize.detail, botStore: botSizes } };
}
