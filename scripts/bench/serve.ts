// What the bot does for `/relevant`, run in a fresh process (see child.ts): start, open the collection, answer the
// first attachment (the cold start), then answer more of them (the steady-state latency).
import { renderCollage } from '../../src/collage.js';
import { preprocessFit } from '../../src/ml/pipeline.js';
import { createEngine, type Engine } from '../../src/index/engine.js';
import { preprocessImage } from '../../src/ml/image.js';
import { thumbnailFromPixels } from '../../src/ml/thumbnail.js';
import { BENCH_NAMESPACE as NAMESPACE, quantile, round, type BenchContext } from './common.js';
import { uploads } from './uploads.js';

export interface ServeResult {
  /** From the process's time origin (its start) to the first reply payload. */
  coldStartMs: number;
  /** Until the engine modules were loaded. */
  importMs: number;
  /** Opening the namespace: index file checksum and load, reconciling with the store. */
  openMs: number;
  firstQueryMs: number;
  /** Queries answered by exact search before the HNSW graph had loaded, and their p95. */
  beforeGraph: { queries: number; p95Ms: number };
  /** From the first reply until the graph answered. */
  graphWaitMs: number;
  queries: number;
  p50Ms: number;
  p95Ms: number;
}

/**
 * What the bot builds for a reply (src/bot/results.ts, without discord.js's message objects): the hits, the
 * query's thumbnail (which the query returns), every hit's stored thumbnail and the overview collage. The 1M
 * serving namespace stores a thumbnail per image, as the bot does; the retrained 100k collection holds none, so a
 * hit without one is drawn from `standIn`, a real thumbnail, as its stored one would be.
 */
export async function answer(engine: Engine, bytes: Uint8Array, standIn: Buffer): Promise<number> {
  const result = await engine.query(bytes, { namespace: NAMESPACE, k: 20 });
  const thumbnails = await Promise.all(result.hits.map((h) => engine.thumbnail(h.record.id, { namespace: NAMESPACE })));
  const collage = await renderCollage(
    { bytes: result.thumbnail, caption: 'query' },
    result.hits.map((h, i) => ({ bytes: thumbnails[i] ?? standIn, caption: h.score.toFixed(3) })),
  );
  const hits = JSON.stringify(result.hits.map((h) => ({ id: h.record.id, source: h.record.source, score: h.score })));
  return hits.length + collage.length;
}

export async function runServe(args: { dataDir: string; queries: number; importedAt: number } & BenchContext): Promise<ServeResult> {
  const engine = createEngine({ dataDir: args.dataDir, retrainPolicy: false, preloadModel: true });
  try {
    let start = performance.now();
    const set = await uploads(args, args.queries);
    const standIn = await thumbnailFromPixels((await preprocessImage(set[set.length - 1].bytes, { fit: preprocessFit() })).pixels);
    // Reading the benchmark's files is not part of the bot's start.
    const readMs = performance.now() - start;
    start = performance.now();
    await engine.stats(NAMESPACE);
    const openMs = performance.now() - start;
    start = performance.now();
    await answer(engine, set[0].bytes, standIn);
    const firstQueryMs = performance.now() - start;
    const coldStartMs = performance.now() - readMs;
    const firstReplyAt = performance.now();
    let graphReady = false;
    const graph = engine.ready(NAMESPACE).then(() => {
      graphReady = true;
    });
    const early: number[] = [];
    for (const upload of set) {
      if (graphReady) break;
      start = performance.now();
      await answer(engine, upload.bytes, standIn);
      early.push(performance.now() - start);
    }
    await graph;
    const graphWaitMs = performance.now() - firstReplyAt;
    const latencies: number[] = [];
    for (const upload of set) {
      start = performance.now();
      await answer(engine, upload.bytes, standIn);
      latencies.push(performance.now() - start);
    }
    return {
      coldStartMs: round(coldStartMs, 1),
      importMs: round(args.importedAt, 1),
      openMs: round(openMs, 1),
      firstQueryMs: round(firstQueryMs, 1),
      beforeGraph: { queries: early.length, p95Ms: early.length > 0 ? round(quantile(early, 0.95), 1) : 0 },
      graphWaitMs: round(graphWaitMs, 1),
      queries: latencies.length,
      p50Ms: round(quantile(latencies, 0.5), 1),
      p95Ms: round(quantile(latencies, 0.95), 1),
    };
  } finally {
    await engine.close();
  }
}
