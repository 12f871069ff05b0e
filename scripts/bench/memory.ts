// Peak RSS, size on disk and cold start, each in a fresh process. A 1M-image store (1280 float16 features per
// image, ~3.5 GB) takes longer to write than the whole benchmark may run, so the serving process is measured on
// the 100k collection and the 1M figures add what the 1M index measurably costs on top.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { namespaceDir } from '../../src/index/namespace.js';
import { VectorIndex } from '../../src/index/vector-index.js';
import { BENCH_NAMESPACE as NAMESPACE, bytesToMiB, median, round, runChild, type BenchContext, type Row, type SuiteResult } from './common.js';
import { ensureIndex, indexDir, indexSizes } from './query.js';
import { trainedNamespace } from './retrain.js';
import type { ServeResult } from './serve.js';
import { LATENT_DIM, clusteredLatents } from './vectors.js';

export interface IndexLoadResult {
  /** Checksum plus hnswlib's read: what a namespace's start spends on its index. */
  loadMs: number;
}

/** Runs in a child process (see child.ts): loads one of the query suite's indexes and searches it. */
export async function runIndexLoad(args: { dir: string }): Promise<IndexLoadResult> {
  const start = performance.now();
  const index = (await VectorIndex.load(args.dir, 'bench'))!;
  const loadMs = performance.now() - start;
  const queries = clusteredLatents(100, 5);
  for (let q = 0; q < 100; q++) index.search(queries.subarray(q * LATENT_DIM, (q + 1) * LATENT_DIM), 21);
  return { loadMs: round(loadMs, 1) };
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

export async function benchMemory(ctx: BenchContext): Promise<SuiteResult> {
  const fixture = await trainedNamespace(ctx);
  const label = `${fixture.images / 1e3}k`;
  const serves: Array<{ result: ServeResult; maxRssBytes: number; wallMs: number }> = [];
  for (let rep = 0; rep < (ctx.quick ? 1 : 3); rep++) {
    serves.push(await runChild<ServeResult>('serve', { dataDir: fixture.dataDir, cacheDir: ctx.cacheDir, quick: ctx.quick, queries: ctx.quick ? 2 : 8 }));
  }
  const coldStart = median(serves.map((s) => s.result.coldStartMs));
  const openMs = median(serves.map((s) => s.result.openMs));
  const serveRss = median(serves.map((s) => s.maxRssBytes));
  const nsBytes = await folderBytes(namespaceDir(fixture.dataDir, NAMESPACE));

  const indexes = new Map<number, { loadMs: number; rss: number; bytes: number }>();
  for (const n of indexSizes(ctx)) {
    const { bytes } = await ensureIndex(ctx, n);
    const { result, maxRssBytes } = await runChild<IndexLoadResult>('index-load', { dir: indexDir(ctx, n) });
    indexes.set(n, { loadMs: result.loadMs, rss: maxRssBytes, bytes });
  }

  const rows: Row[] = [
    { suite: 'memory', metric: `peak RSS serving ${label} images`, value: bytesToMiB(serveRss), unit: 'MiB' },
    { suite: 'memory', metric: `on disk at ${label} (store + index + VAE)`, value: bytesToMiB(nsBytes), unit: 'MiB' },
    {
      suite: 'memory',
      metric: `cold start at ${label} (process start → first reply)`,
      value: round(coldStart),
      unit: 'ms',
      note: `namespace open ${round(openMs)} ms; parent-side wall ${round(median(serves.map((s) => s.wallMs)))} ms`,
    },
  ];
  for (const [n, { loadMs, rss, bytes }] of indexes) {
    rows.push({ suite: 'memory', metric: `index at ${n / 1e3}k: load (checksum + read)`, value: loadMs, unit: 'ms', note: `${bytesToMiB(bytes)} MiB file, ${bytesToMiB(rss)} MiB peak RSS` });
  }
  const million = indexes.get(1_000_000);
  const served = indexes.get(fixture.images);
  if (million && served) {
    const scale = 1_000_000 / fixture.images;
    rows.push({
      suite: 'memory',
      metric: 'peak RSS serving 1M images',
      value: bytesToMiB(serveRss + million.rss - served.rss),
      unit: 'MiB',
      target: { op: '<=', value: 1536 },
      estimated: true,
      note: `RSS at ${label} + the 1M index's extra RSS over the ${label} one`,
    });
    const storeBytes = (await stat(join(namespaceDir(fixture.dataDir, NAMESPACE), 'store.sqlite'))).size;
    rows.push({
      suite: 'memory',
      metric: 'on disk at 1M',
      value: bytesToMiB(storeBytes * scale + million.bytes),
      unit: 'MiB',
      estimated: true,
      note: `store at ${label} × ${scale} + the measured 1M index file`,
    });
    rows.push({
      suite: 'memory',
      metric: 'cold start at 1M',
      value: round(coldStart + (scale - 1) * openMs),
      unit: 'ms',
      target: { op: '<=', value: 5000 },
      estimated: true,
      note: `cold start at ${label} + namespace open scaled linearly (the 1M index alone loads in ${million.loadMs} ms)`,
    });
  }
  return { rows, detail: { serves, namespaceBytes: nsBytes, indexes: Object.fromEntries(indexes) } };
}
