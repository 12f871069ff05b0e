// HNSW latency and recall@20 against exact search at 10k / 100k / 1M clustered 64-d latents, for several ef values,
// and the `/relevant` work end to end (attachment bytes → reply payload).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import { FlatVectors } from '../../src/index/flat-vectors.js';
import { VectorIndex, indexFiles } from '../../src/index/vector-index.js';
import { cachedJson, createRandom, quantile, round, runChild, type BenchContext, type Row, type SuiteResult } from './common.js';
import { DATA_SEED, INDEX_KEY_ID, ensureIndex, indexDir, indexSizes } from './indexes.js';
import { trainedNamespace } from './retrain.js';
import { servingNamespace } from './serving.js';
import type { ServeResult } from './serve.js';
import { LATENT_DIM, clusteredLatents, exactNeighbours } from './vectors.js';

const K = 20;
const EF_VALUES = [50, 100, 200, 400];
const QUERY_SEED = 999;

interface Truth {
  /** Half held-out draws from the same clusters, half reposts of indexed vectors (slightly altered). */
  queries: number[][];
  neighbours: number[][];
}

async function truthFor(ctx: BenchContext, n: number): Promise<Truth> {
  const count = ctx.quick ? 20 : 200;
  return cachedJson(join(indexDir(ctx, n), `truth-${count}.json`), async () => {
    ctx.log(`query: exact top-${K} for ${count} queries over ${n} vectors`);
    const data = clusteredLatents(n, DATA_SEED);
    const queries = clusteredLatents(count, QUERY_SEED);
    const random = createRandom(QUERY_SEED);
    for (let q = 1; q < count; q += 2) {
      const row = random.int(n) * LATENT_DIM;
      for (let d = 0; d < LATENT_DIM; d++) queries[q * LATENT_DIM + d] = data[row + d] + 0.05 * random.gauss();
    }
    const rows = Array.from({ length: count }, (_, q) => Array.from(queries.subarray(q * LATENT_DIM, (q + 1) * LATENT_DIM)));
    return { queries: rows, neighbours: exactNeighbours(data, queries, LATENT_DIM, K) };
  });
}

function recallAt(found: number[], truth: number[]): number {
  const expected = new Set(truth);
  return found.slice(0, K).filter((id) => expected.has(id)).length / truth.length;
}

interface Sweep {
  ef: number | 'engine' | 'exact';
  recall: number;
  p50: number;
  p95: number;
  p99: number;
}

/** Times every query `reps` times after one warm-up pass; latencies in ms. */
function sweep(truth: Truth, reps: number, ef: Sweep['ef'], search: (q: number[]) => number[]): Sweep {
  const recalls = truth.queries.map((q, i) => recallAt(search(q), truth.neighbours[i]));
  const latencies: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const q of truth.queries) {
      const start = performance.now();
      search(q);
      latencies.push(performance.now() - start);
    }
  }
  const recall = recalls.reduce((a, b) => a + b, 0) / recalls.length;
  return { ef, recall: round(recall), p50: round(quantile(latencies, 0.5)), p95: round(quantile(latencies, 0.95)), p99: round(quantile(latencies, 0.99)) };
}

async function measureSize(ctx: BenchContext, n: number): Promise<{ build: { buildSeconds: number; bytes: number }; sweeps: Sweep[] }> {
  const build = await ensureIndex(ctx, n);
  const truth = await truthFor(ctx, n);
  const reps = ctx.quick ? 1 : 5;
  const sweeps: Sweep[] = [];
  const hnsw = new hnswlib.HierarchicalNSW('cosine', LATENT_DIM);
  await hnsw.readIndex((await indexFiles(indexDir(ctx, n), INDEX_KEY_ID)).graph!);
  for (const ef of EF_VALUES) {
    hnsw.setEf(ef);
    sweeps.push(sweep(truth, reps, ef, (q) => hnsw.searchKnn(q, K).neighbors));
  }
  // The engine's calls: exact search over the flat vectors while the graph loads, then VectorIndex.search with
  // k+1 (the engine drops the query image itself when it is stored).
  const flat = FlatVectors.fromBytes(await readFile((await indexFiles(indexDir(ctx, n), INDEX_KEY_ID)).flat!), LATENT_DIM);
  sweeps.push(sweep(truth, 1, 'exact', (q) => flat.search(Float32Array.from(q), K + 1).map((h) => h.id)));
  const index = (await VectorIndex.load(indexDir(ctx, n), INDEX_KEY_ID))!;
  await index.ready();
  sweeps.push(sweep(truth, reps, 'engine', (q) => index.search(Float32Array.from(q), K + 1).map((h) => h.id)));
  return { build, sweeps };
}

export async function benchQuery(ctx: BenchContext): Promise<SuiteResult> {
  const rows: Row[] = [];
  const detail: Record<string, unknown> = {};
  const sizes = indexSizes(ctx);
  for (const n of sizes) {
    const { build, sweeps } = await measureSize(ctx, n);
    detail[`n${n}`] = { ...build, sweeps };
    const label = n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`;
    const isTargetSize = n === sizes[sizes.length - 1];
    const good = sweeps.find((s) => typeof s.ef === 'number' && s.recall >= 0.95);
    rows.push({
      suite: 'query',
      metric: `HNSW p95 at ${label}, smallest ef with recall@20 ≥ 0.95 (${good ? `ef ${good.ef}` : 'none reached it'})`,
      value: good ? good.p95 : NaN,
      unit: 'ms',
      target: isTargetSize ? { op: '<=', value: 2 } : undefined,
      note: good ? `recall@20 ${good.recall}, p50 ${good.p50} ms, p99 ${good.p99} ms` : undefined,
    });
    const engine = sweeps.find((s) => s.ef === 'engine')!;
    rows.push({ suite: 'query', metric: `engine index.search (ef 100, k 21) at ${label}: p95`, value: engine.p95, unit: 'ms', note: `recall@20 ${engine.recall}, p50 ${engine.p50} ms, p99 ${engine.p99} ms` });
    const exact = sweeps.find((s) => s.ef === 'exact')!;
    rows.push({ suite: 'query', metric: `exact search over the flat vectors at ${label} (answers while the graph loads): p95`, value: exact.p95, unit: 'ms', note: `p50 ${exact.p50} ms` });
    rows.push({
      suite: 'query',
      metric: `recall@20 at ${label}, ef ${EF_VALUES.join('/')}`,
      value: sweeps.find((s) => s.ef === 100)!.recall,
      unit: 'at ef 100',
      target: isTargetSize ? { op: '>=', value: 0.95 } : undefined,
      note: sweeps.filter((s) => typeof s.ef === 'number').map((s) => `ef ${s.ef}: ${s.recall} (p95 ${s.p95} ms)`).join('; '),
    });
    if (!ctx.quick) rows.push({ suite: 'query', metric: `index build at ${label} (VectorIndex.add, one core)`, value: build.buildSeconds, unit: 's' });
  }

  // `/relevant` in a fresh serving process: bytes → reply payload, with the graph loaded (the steady state).
  for (const fixture of [await trainedNamespace(ctx), await servingNamespace(ctx)]) {
    const { result } = await runChild<ServeResult>('serve', { dataDir: fixture.dataDir, cacheDir: ctx.cacheDir, quick: ctx.quick, queries: ctx.quick ? 4 : 96 });
    detail[`relevant${fixture.images}`] = result;
    const isTarget = fixture.images === sizes[sizes.length - 1];
    const label = fixture.images >= 1e6 ? `${fixture.images / 1e6}M` : `${fixture.images / 1e3}k`;
    rows.push({ suite: 'query', metric: `/relevant work at ${label} (bytes → reply payload): p50`, value: result.p50Ms, unit: 'ms' });
    rows.push({
      suite: 'query',
      metric: `/relevant work at ${label}: p95`,
      value: result.p95Ms,
      unit: 'ms',
      target: isTarget ? { op: '<=', value: 250 } : undefined,
      note: `${result.queries} uploads; before the graph loaded, ${result.beforeGraph.queries} answered by exact search (p95 ${result.beforeGraph.p95Ms} ms)`,
    });
  }
  return { rows, detail };
}
