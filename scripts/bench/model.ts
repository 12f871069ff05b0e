// MobileNetV2 alone: images/s per batch size and thread count, with the session options the worker uses, and
// through the engine's batching worker.
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { createFeatureExtractor } from '../../src/ml/features.js';
import { preprocessImage } from '../../src/ml/image.js';
import { MODEL_INPUT, defaultModelDir, ortSessionOptions } from '../../src/ml/onnx-model.js';
import { machineInfo, median, round, type BenchContext, type Row, type SuiteResult } from './common.js';
import { referencePhotos } from './vectors.js';

/** MobileNetV2 1.0/224 (Sandler et al., table 6). */
const MACS_PER_IMAGE = 300e6;
const INPUT_LENGTH = MODEL_INPUT.size * MODEL_INPUT.size * MODEL_INPUT.channels;

/**
 * fp32 multiply-adds per cycle per core: two 256-bit FMA pipes (Zen 2-4, and Intel cores without a second
 * 512-bit unit) do 16; one 128-bit SSE pipe pair does 8. AVX-512 on these parts runs on the same 256-bit pipes.
 * The clock is the nominal one a VM reports; boost runs faster, so shares above 100% mean the core was boosting.
 */
function peakMacsPerSecond(threads: number): number {
  const { mhz, simd } = machineInfo();
  return threads * mhz * 1e6 * (simd === 'sse' ? 8 : 16);
}

async function realInputs(count: number): Promise<Float32Array> {
  const photos = await referencePhotos();
  const data = new Float32Array(count * INPUT_LENGTH);
  for (let i = 0; i < count; i++) data.set((await preprocessImage(photos[i % photos.length])).input, i * INPUT_LENGTH);
  return data;
}

/** One timing: runs the first `batch` images of `data` for at least `minMs` after one warm-up run. */
export async function msPerImage(session: ort.InferenceSession, data: Float32Array, batch: number, minMs: number): Promise<number> {
  const size = MODEL_INPUT.size;
  const feeds = { [MODEL_INPUT.name]: new ort.Tensor('float32', data.subarray(0, batch * INPUT_LENGTH), [batch, size, size, 3]) };
  await session.run(feeds);
  let runs = 0;
  const start = performance.now();
  while (performance.now() - start < minMs || runs < 2) {
    await session.run(feeds);
    runs++;
  }
  return (performance.now() - start) / (runs * batch);
}

/** The engine's path: images queued one by one, batched by the worker (16 at most). */
async function extractorImagesPerSecond(data: Float32Array, threads: number, images: number): Promise<number> {
  const extractor = await createFeatureExtractor({ threads });
  try {
    const inputs = Array.from({ length: images }, (_, i) => data.slice((i % 32) * INPUT_LENGTH, ((i % 32) + 1) * INPUT_LENGTH));
    await Promise.all(inputs.slice(0, 16).map((x) => extractor.extract(x)));
    const start = performance.now();
    await Promise.all(inputs.map((x) => extractor.extract(x)));
    return (images * 1000) / (performance.now() - start);
  } finally {
    await extractor.close();
  }
}

export async function benchModel(ctx: BenchContext): Promise<SuiteResult> {
  const batches = ctx.quick ? [1, 16] : [1, 8, 16, 32];
  const threadCounts = ctx.quick ? [1] : [1, 2];
  const reps = ctx.quick ? 1 : 3;
  const minMs = ctx.quick ? 200 : 1500;
  const data = await realInputs(32);
  const timings = new Map<string, number[]>();
  const cpuTimings = new Map<string, number[]>();
  // Repetitions interleave the configurations, so a burst of load from other processes hits all of them alike.
  for (let rep = 0; rep < reps; rep++) {
    for (const threads of threadCounts) {
      const session = await ort.InferenceSession.create(join(defaultModelDir(), 'model.onnx'), ortSessionOptions(threads));
      for (const batch of batches) {
        const key = `${threads}/${batch}`;
        const cpu = process.cpuUsage();
        const start = performance.now();
        const ms = await msPerImage(session, data, batch, minMs);
        const { user, system } = process.cpuUsage(cpu);
        // Wall time per image scaled by the CPU share this process got: other processes' load barely moves it.
        const cpuShare = (user + system) / 1000 / (performance.now() - start);
        timings.set(key, [...(timings.get(key) ?? []), ms]);
        cpuTimings.set(key, [...(cpuTimings.get(key) ?? []), ms * cpuShare]);
      }
      await session.release();
    }
    ctx.log(`model: round ${rep + 1}/${reps}`);
  }
  const rows: Row[] = [];
  const configurations = [];
  for (const threads of threadCounts) {
    for (const batch of batches) {
      const ms = median(timings.get(`${threads}/${batch}`)!);
      const cpuMs = median(cpuTimings.get(`${threads}/${batch}`)!);
      const imagesPerSecond = 1000 / ms;
      // Per CPU-second actually used, so the share does not drop just because other processes took the cores.
      const peakShare = (MACS_PER_IMAGE * 1000) / cpuMs / peakMacsPerSecond(1);
      configurations.push({ threads, batch, msPerImage: round(ms), cpuMsPerImage: round(cpuMs), imagesPerSecond: round(imagesPerSecond, 1), peakShare: round(peakShare) });
      rows.push({
        suite: 'model',
        metric: `images/s, batch ${batch}, ${threads} thread${threads > 1 ? 's' : ''}`,
        value: round(imagesPerSecond, 1),
        unit: 'img/s',
        target: batch === 16 && threads === 1 ? { op: '>=', value: 120 } : undefined,
        note: `${round(ms, 2)} ms/image wall, ${round(cpuMs, 2)} CPU ms/image (≈ ${round((1000 * threads) / cpuMs, 1)} img/s on idle cores), ${round(peakShare * 100, 1)}% of the nominal-clock fp32 peak`,
      });
    }
  }
  const extractor: Record<string, number> = {};
  for (const threads of threadCounts) {
    const perSecond = await extractorImagesPerSecond(data, threads, ctx.quick ? 16 : 256);
    extractor[`threads${threads}`] = round(perSecond, 1);
    rows.push({ suite: 'model', metric: `feature extractor (worker, batches of 16), ${threads} thread${threads > 1 ? 's' : ''}`, value: round(perSecond, 1), unit: 'img/s' });
  }
  return { rows, detail: { macsPerImage: MACS_PER_IMAGE, peakMacsPerSecondPerCore: peakMacsPerSecond(1), configurations, extractor } };
}
