// Seconds per epoch of VAE training (in the worker thread, as the engine runs it) on synthetic
// MobileNetV2-like vectors, plus the pure-JS encode cost per vector. Prints one JSON object.
//
//   npm run build && node dist/scripts/bench-vae.js [--sizes 10000,20000] [--epochs 3] [--hidden 512] [--latent 64]
//
// The first epoch pays for JIT and wasm warm-up, so the median over the others is the figure to quote.
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { initTrainingBackend } from '../src/ml/vae-train.js';
import { trainVaeInWorker } from '../src/ml/vae-worker-client.js';

const DIM = 1280;
const CLUSTERS = 50;

/** Non-negative vectors around sparse cluster centres with per-image scale, L2 norms ~15-30 like MobileNetV2's. */
function structuredVectors(n: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const rand = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const base = Float32Array.from({ length: DIM }, () => rand() * 0.4);
  const centres = Array.from({ length: CLUSTERS }, () => {
    const c = Float32Array.from(base);
    for (let i = 0; i < 64; i++) c[Math.floor(rand() * DIM)] += 0.5 + rand();
    return c;
  });
  const out = new Float32Array(n * DIM);
  for (let i = 0; i < n; i++) {
    const c = centres[Math.floor(rand() * CLUSTERS)];
    const scale = 0.7 + 0.6 * rand();
    for (let k = 0; k < DIM; k++) out[i * DIM + k] = Math.max(0, (c[k] + 0.6 * gauss()) * scale);
  }
  return out;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,20000' },
    epochs: { type: 'string', default: '3' },
    hidden: { type: 'string', default: '512' },
    latent: { type: 'string', default: '64' },
  },
});
const sizes = args.sizes.split(',').map(Number);
const epochs = Number(args.epochs);
const hidden = Number(args.hidden);
const latent = Number(args.latent);

const results = [];
for (const n of sizes) {
  const features = structuredVectors(n, 7);
  const perEpoch: number[] = [];
  const started = performance.now();
  const model = await trainVaeInWorker(features.slice(), n, { hidden, latent, epochs, seed: 1 }, {
    onProgress: (p) => perEpoch.push(p.secondsPerEpoch),
  });
  const wallSeconds = (performance.now() - started) / 1000;
  const sample = Math.min(n, 2000);
  const encodeStart = performance.now();
  model.encode(features, sample);
  const encodeMsPerVector = (performance.now() - encodeStart) / sample;
  const singleStart = performance.now();
  for (let i = 0; i < 100; i++) model.encode(features.subarray(i * DIM, (i + 1) * DIM), 1);
  const encodeMsSingle = (performance.now() - singleStart) / 100;
  results.push({
    n,
    epochs,
    batchSize: model.meta.hyper.batchSize,
    secondsPerEpoch: perEpoch.map((s) => Number(s.toFixed(2))),
    medianSecondsPerEpoch: Number(median(perEpoch.length > 1 ? perEpoch.slice(1) : perEpoch).toFixed(2)),
    wallSeconds: Number(wallSeconds.toFixed(1)),
    encodeMsPerVectorBatched: Number(encodeMsPerVector.toFixed(3)),
    encodeMsPerVectorSingle: Number(encodeMsSingle.toFixed(3)),
    activeUnits: model.meta.activeUnits,
  });
}

console.log(
  JSON.stringify(
    {
      // The worker runs the same selection, so this is the backend it trained on.
      backend: await initTrainingBackend(),
      architecture: `${DIM}-${hidden}-${latent}`,
      node: process.version,
      cpu: cpus()[0]?.model,
      cores: cpus().length,
      results,
    },
    null,
    2,
  ),
);
