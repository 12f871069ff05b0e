// End-to-end ingest through the engine (bytes → sha256 → decode → MobileNetV2 → VAE → store → index) on generated
// uploads in a temporary data dir, and each stage timed alone on the same images to show where the time goes.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIN_RETRAIN_IMAGES as VAE_SEED_IMAGES, createEngine, type Engine } from '../../src/index/engine.js';
import { Namespace } from '../../src/index/namespace.js';
import { silentLogger } from '../../src/log.js';
import { createFeatureExtractor } from '../../src/ml/features.js';
import { preprocessImage } from '../../src/ml/image.js';
import { thumbnailFromPixels } from '../../src/ml/thumbnail.js';
import { bytesToMiB, median, round, runChild, type BenchContext, type Row, type SuiteResult } from './common.js';
import { ENGINE_FIT, IN_FLIGHT, inFlight } from './decode.js';
import { uploads, type Upload } from './uploads.js';
import { FEATURE_DIM, baseFeatures, syntheticFeatures } from './vectors.js';


interface IngestResult {
  images: number;
  vaeImagesPerSecond: number[];
  /** Process CPU time (all threads) per image: unlike wall time, barely affected by other processes' load. */
  vaeCpuMsPerImage: number[];
  rawImagesPerSecond: number[];
  stageMsPerImage: Record<string, StageTime>;
}

async function timeIngest(engine: Engine, namespace: string, set: Upload[]): Promise<{ imagesPerSecond: number; cpuMsPerImage: number }> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  await inFlight(set, IN_FLIGHT, (u) => engine.index(u.bytes, { namespace, source: u.name }));
  const { user, system } = process.cpuUsage(cpu);
  return { imagesPerSecond: (set.length * 1000) / (performance.now() - start), cpuMsPerImage: (user + system) / 1000 / set.length };
}

/** A namespace keyed on a (one-epoch) VAE, trained on the fewest synthetic features the engine accepts. */
async function vaeNamespace(engine: Engine, dataDir: string, name: string, base: Float32Array[]): Promise<void> {
  const ns = await Namespace.open(dataDir, name, FEATURE_DIM, silentLogger);
  const features = syntheticFeatures(base, VAE_SEED_IMAGES, 3);
  await ns.store.exclusive(async () => {
    for (let i = 0; i < VAE_SEED_IMAGES; i++) {
      const sha256 = createHash('sha256').update(`${name}/${i}`).digest('hex');
      const record = { sha256, source: `seed/${i}`, width: 1, height: 1, addedAt: new Date().toISOString() };
      await ns.store.insert(record, features.subarray(i * FEATURE_DIM, (i + 1) * FEATURE_DIM));
    }
  });
  await ns.close();
  await engine.retrain({ namespace: name });
}

/** Wall and process CPU time (all threads) per image of one stage, run alone over the whole set. */
interface StageTime {
  wallMs: number;
  cpuMs: number;
}

async function timeStage(images: number, work: () => Promise<unknown>): Promise<StageTime> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  await work();
  const { user, system } = process.cpuUsage(cpu);
  return { wallMs: round((performance.now() - start) / images, 2), cpuMs: round((user + system) / 1000 / images, 2) };
}

async function stageTimes(set: Upload[], dataDir: string): Promise<Record<string, StageTime>> {
  const n = set.length;
  const sha256 = await timeStage(n, async () => {
    for (const u of set) createHash('sha256').update(u.bytes).digest('hex');
  });

  const images: { input: Float32Array; pixels: Buffer }[] = [];
  const decode = await timeStage(n, () =>
    inFlight(set, IN_FLIGHT, async (u) => images.push(await preprocessImage(u.bytes, { fit: ENGINE_FIT }))),
  );
  const inputs = images.map((image) => image.input);
  const thumbnail = await timeStage(n, () => inFlight(images, IN_FLIGHT, (image) => thumbnailFromPixels(image.pixels)));

  const extractor = await createFeatureExtractor();
  let features: Float32Array[] = [];
  let model: StageTime;
  try {
    await extractor.extract(inputs[0]);
    model = await timeStage(n, async () => {
      features = await Promise.all(inputs.map((x) => extractor.extract(x)));
    });
  } finally {
    await extractor.close();
  }

  const ns = await Namespace.open(dataDir, 'stages', FEATURE_DIM, silentLogger);
  const storeAndIndex = await timeStage(n, () =>
    inFlight(features.map((f, i) => ({ f, i })), IN_FLIGHT, ({ f, i }) =>
      ns.store.exclusive(async () => {
        const record = await ns.store.insert({ sha256: `stage${i}`, source: `${i}`, width: 1, height: 1, addedAt: new Date().toISOString() }, f);
        ns.addToIndex(record.id, f, undefined);
      }),
    ),
  );
  await ns.close();
  return { sha256, decode, thumbnail, model, storeAndIndex };
}

/** Runs in a child process (see child.ts), so its peak RSS is the ingest's own. */
export async function runIngest(ctx: BenchContext): Promise<IngestResult> {
  const set = await uploads(ctx, ctx.quick ? 4 : 96);
  const reps = ctx.quick ? 1 : 3;
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-ingest-'));
  const engine = createEngine({ dataDir, retrainPolicy: false, vaeHyper: { epochs: 1 } });
  try {
    await timeIngest(engine, 'warmup', set.slice(0, 2));
    const result: IngestResult = { images: set.length, vaeImagesPerSecond: [], vaeCpuMsPerImage: [], rawImagesPerSecond: [], stageMsPerImage: {} };
    const base = ctx.quick ? [] : await baseFeatures(ctx);
    for (let rep = 0; rep < reps; rep++) {
      result.rawImagesPerSecond.push((await timeIngest(engine, `raw${rep}`, set)).imagesPerSecond);
      if (ctx.quick) continue;
      await vaeNamespace(engine, dataDir, `vae${rep}`, base);
      const vae = await timeIngest(engine, `vae${rep}`, set);
      result.vaeImagesPerSecond.push(vae.imagesPerSecond);
      result.vaeCpuMsPerImage.push(vae.cpuMsPerImage);
    }
    result.stageMsPerImage = await stageTimes(set, dataDir);
    return result;
  } finally {
    await engine.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export async function benchIngest(ctx: BenchContext): Promise<SuiteResult> {
  const count = ctx.quick ? 4 : 96;
  await uploads(ctx, count);
  if (!ctx.quick) await baseFeatures(ctx);
  const { result, maxRssBytes } = await runChild<IngestResult>('ingest', { quick: ctx.quick, cacheDir: ctx.cacheDir });
  const rows: Row[] = [];
  const cores = cpus().length;
  if (result.vaeImagesPerSecond.length > 0) {
    const value = round(median(result.vaeImagesPerSecond), 1);
    rows.push({ suite: 'ingest', metric: `end to end, VAE-keyed namespace, ${IN_FLIGHT} in flight`, value, unit: 'img/s', target: { op: '>=', value: 40 } });
    const cpuMs = median(result.vaeCpuMsPerImage);
    rows.push({
      suite: 'ingest',
      metric: 'CPU time per image, VAE-keyed (all threads)',
      value: round(cpuMs, 1),
      unit: 'ms',
      note: `ceiling on an idle machine with ${cores} cores: ≈ ${round((cores * 1000) / cpuMs, 1)} img/s`,
    });
  }
  rows.push({ suite: 'ingest', metric: `end to end, raw-keyed namespace, ${IN_FLIGHT} in flight`, value: round(median(result.rawImagesPerSecond), 1), unit: 'img/s' });
  for (const [stage, { wallMs, cpuMs }] of Object.entries(result.stageMsPerImage)) {
    rows.push({ suite: 'ingest', metric: `stage alone: ${stage}, CPU (all threads)`, value: cpuMs, unit: 'ms/img', note: `wall ${wallMs} ms/img` });
  }
  rows.push({ suite: 'ingest', metric: 'peak RSS during ingest', value: bytesToMiB(maxRssBytes), unit: 'MiB' });
  return { rows, detail: { ...result, maxRssBytes } };
}
