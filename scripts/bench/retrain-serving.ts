// `/relevant` while a retrain runs: the same work the serving benchmark times (attachment bytes → reply payload),
// issued at a steady rate in one process, first at rest and then while `engine.retrain` runs on the 100k store
// (forced past the quality gate, so the index build and the swap are always inside the window). The store's images
// have posters, as a bot's have, so the retrain ends by fitting their styles for a trial (the `style` phase). A
// query's time counts from when it was due, so a main thread held up by the retrain shows as the wait it causes.
//
// BENCH_RETRAIN_DATA_DIR=<data dir> points it at another collection (a copy is retrained; its namespace must be
// `bench`), e.g. the 1M serving namespace: `npm run bench -- --only retrain-serving` with the variable set.
import { cp, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { preprocessFit } from '../../src/ml/pipeline.js';
import { createEngine, type Engine, type RetrainProgress } from '../../src/index/engine.js';
import { preprocessImage } from '../../src/ml/image.js';
import { thumbnailFromPixels } from '../../src/ml/thumbnail.js';
import { BENCH_NAMESPACE as NAMESPACE, bytesToMiB, cachePath, quantile, round, runChild, type BenchContext, type Row, type SuiteResult } from './common.js';
import { ensureStore, measuredEpochs, retrainSizes } from './retrain.js';
import { answer } from './serve.js';
import { uploads } from './uploads.js';

/** One query every this many ms: a busy guild's pace, well below what one process answers at rest. */
const INTERVAL_MS = 500;
/** At rest: a minute of queries (a few in --quick, whose retrain takes seconds). */
const REST_QUERIES = 120;
const QUICK_REST_QUERIES = 8;
const UPLOADS = 60;

interface Sample {
  /** Ms after the window opened that the query was due. */
  dueMs: number;
  ms: number;
  /** The retrain's phase when the query was due (`rest` outside a retrain). */
  phase: RetrainProgress['phase'] | 'rest';
}

export interface RetrainServingRun {
  images: number;
  epochs: number;
  retrainSeconds: number;
  rest: Sample[];
  during: Sample[];
  /** The style key the retrain started a trial of; none when its posters were too few. */
  trial?: string;
}

/** Queries due every INTERVAL_MS until `until` resolves (or `count` are due); each timed from when it was due. */
async function steadyQueries(engine: Engine, set: Uint8Array[], standIn: Buffer, phase: () => Sample['phase'], stop: { count?: number; until?: Promise<unknown> }): Promise<Sample[]> {
  let finished = false;
  void stop.until?.finally(() => (finished = true));
  const start = performance.now();
  const running: Array<Promise<Sample>> = [];
  for (let i = 0; !finished && (stop.count === undefined || i < stop.count); i++) {
    const due = start + i * INTERVAL_MS;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const at = phase();
    running.push(answer(engine, set[i % set.length], standIn).then(() => ({ dueMs: round(due - start, 1), ms: round(performance.now() - due, 1), phase: at })));
  }
  return Promise.all(running);
}

/** Runs in a child process (child.ts): retrains a copy of `source` while answering queries. */
export async function runRetrainServing(args: { source: string; workDir: string; epochs: number } & BenchContext): Promise<RetrainServingRun> {
  await rm(args.workDir, { recursive: true, force: true });
  await cp(args.source, args.workDir, { recursive: true });
  const engine = createEngine({ dataDir: args.workDir, retrainPolicy: false, preloadModel: true, vaeHyper: { epochs: args.epochs } });
  try {
    const set = (await uploads(args, UPLOADS)).map((u) => u.bytes);
    const standIn = await thumbnailFromPixels((await preprocessImage(set[0], { fit: preprocessFit() })).pixels);
    const images = (await engine.stats(NAMESPACE)).images;
    await engine.ready(NAMESPACE);
    for (const bytes of set.slice(0, 5)) await answer(engine, bytes, standIn);
    const rest = await steadyQueries(engine, set, standIn, () => 'rest', { count: args.quick ? QUICK_REST_QUERIES : REST_QUERIES });
    let phase: RetrainProgress['phase'] = 'loading';
    const started = performance.now();
    const retrain = engine.retrain({ namespace: NAMESPACE, force: true, onProgress: (p) => (phase = p.phase) });
    const during = await steadyQueries(engine, set, standIn, () => phase, { until: retrain });
    const { trial } = await retrain;
    return { images, epochs: args.epochs, retrainSeconds: round((performance.now() - started) / 1000, 1), rest, during, ...(trial ? { trial } : {}) };
  } finally {
    await engine.close();
    await rm(args.workDir, { recursive: true, force: true });
  }
}

const p95 = (samples: Sample[]): number => round(quantile(samples.map((s) => s.ms), 0.95), 1);

export async function benchRetrainServing(ctx: BenchContext): Promise<SuiteResult> {
  const sizes = retrainSizes(ctx);
  const n = sizes[sizes.length - 1];
  const override = process.env.BENCH_RETRAIN_DATA_DIR;
  const source = override ?? (await ensureStore(ctx, n, true));
  const epochs = measuredEpochs(ctx, n);
  ctx.log(`retrain-serving: /relevant every ${INTERVAL_MS} ms at rest, then during a retrain of ${source} (${epochs} epochs)`);
  const { result, maxRssBytes } = await runChild<RetrainServingRun>('retrain-serving', { source, workDir: cachePath(ctx, 'retrain-serving'), epochs, cacheDir: ctx.cacheDir, quick: ctx.quick });
  const label = `${round(result.images / 1e3, 1)}k`;
  const rest = p95(result.rest);
  const during = p95(result.during);
  const phases = new Map<string, Sample[]>();
  for (const sample of result.during) phases.set(sample.phase, [...(phases.get(sample.phase) ?? []), sample]);
  const byPhase = [...phases].map(([phase, samples]) => `${phase} ${p95(samples)} ms (${samples.length})`).join(', ');
  const rows: Row[] = [
    { suite: 'retrain-serving', metric: `/relevant work p95 at rest (${label} collection, one every ${INTERVAL_MS} ms)`, value: rest, unit: 'ms', note: `${result.rest.length} queries` },
    {
      suite: 'retrain-serving',
      metric: `/relevant work p95 during a ${label} retrain`,
      value: during,
      unit: 'ms',
      note: `${result.during.length} queries over the ${result.retrainSeconds} s retrain (${result.epochs} epochs, forced swap, ${result.trial ? 'a style trial started' : 'no style trial'}); p95 by phase: ${byPhase}; worst ${Math.max(...result.during.map((s) => s.ms))} ms`,
    },
    { suite: 'retrain-serving', metric: `/relevant p95 during a ${label} retrain ÷ at rest`, value: round(during / rest, 2), unit: '×', target: { op: '<=', value: 2 } },
    { suite: 'retrain-serving', metric: `peak RSS, retraining ${label} while serving`, value: bytesToMiB(maxRssBytes), unit: 'MiB' },
  ];
  return { rows, detail: { ...result, maxRssBytes } };
}
