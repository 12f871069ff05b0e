// sharp decode + preprocessing (bytes → 224×224 tensor) on generated uploads, one at a time and with several in
// flight as the CLI and the bot run it.
import { preprocessFit } from '../../src/ml/pipeline.js';
import { preprocessImage } from '../../src/ml/image.js';
import { median, round, type BenchContext, type Row, type SuiteResult } from './common.js';
import { uploads, type Upload } from './uploads.js';

/** Images in flight during ingest (the CLI's IN_FLIGHT); libuv's pool has 4 threads. */
export const IN_FLIGHT = 4;

export async function inFlight<T>(items: T[], concurrency: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * The engine's fit, and 'crop' beside it because its pre-resize extract keeps libvips from shrinking JPEG and
 * WebP while decoding, which the comparison shows.
 */
export const ENGINE_FIT = preprocessFit();
const FITS = [ENGINE_FIT, 'crop'] as const;
type Fit = (typeof FITS)[number];

async function imagesPerSecond(set: Upload[], concurrency: number, fit: Fit): Promise<number> {
  const start = performance.now();
  await inFlight(set, concurrency, (u) => preprocessImage(u.bytes, { fit }));
  return (set.length * 1000) / (performance.now() - start);
}

export async function benchDecode(ctx: BenchContext): Promise<SuiteResult> {
  const set = await uploads(ctx, ctx.quick ? 4 : 48);
  const reps = ctx.quick ? 1 : 3;
  for (const u of set.slice(0, 4)) await preprocessImage(u.bytes, { fit: ENGINE_FIT });

  const perUpload = new Map<string, number[]>();
  /** CPU ms (all threads) per upload with the engine's fit, one at a time: which decoders the time goes to. */
  const cpuPerUpload = new Map<string, number[]>();
  const throughput = new Map<string, number[]>();
  const record = <K>(map: Map<K, number[]>, key: K, value: number) => map.set(key, [...(map.get(key) ?? []), value]);
  for (let rep = 0; rep < reps; rep++) {
    for (const fit of FITS) {
      for (const u of set) {
        const cpu = process.cpuUsage();
        const start = performance.now();
        await preprocessImage(u.bytes, { fit });
        record(perUpload, `${fit} ${u.name}`, performance.now() - start);
        const { user, system } = process.cpuUsage(cpu);
        if (fit === ENGINE_FIT) record(cpuPerUpload, u.name, (user + system) / 1000);
      }
      for (const concurrency of [1, IN_FLIGHT]) record(throughput, `${fit} ${concurrency}`, await imagesPerSecond(set, concurrency, fit));
    }
    ctx.log(`decode: round ${rep + 1}/${reps}`);
  }

  const uploadsDetail = set.map((u) => ({
    name: u.name,
    format: u.format,
    megapixels: u.megapixels,
    bytes: u.bytes.length,
    ...Object.fromEntries(FITS.map((fit) => [`${fit}Ms`, round(median(perUpload.get(`${fit} ${u.name}`)!), 1)])),
  }));
  const engineMs = (u: { name: string }) => median(perUpload.get(`${ENGINE_FIT} ${u.name}`)!);
  const byFormat: Record<string, Record<string, number>> = {};
  for (const fit of FITS) {
    byFormat[fit] = {};
    for (const format of new Set(set.map((u) => u.format))) {
      byFormat[fit][format] = round(median(set.filter((u) => u.format === format).map((u) => median(perUpload.get(`${fit} ${u.name}`)!))), 1);
    }
  }
  const byMegapixels = [...new Set(set.map((u) => u.megapixels))]
    .sort((a, b) => a - b)
    .map((mp) => ({ megapixels: mp, ms: round(median(set.filter((u) => u.megapixels === mp).map(engineMs)), 1) }));
  // Each format's CPU time per image of the whole mix, so the rows add up to the mix's decode CPU per image.
  const formats = [...new Set(set.map((u) => u.format))];
  const cpuOfMix = Object.fromEntries(
    formats.map((format) => [format, set.filter((u) => u.format === format).reduce((sum, u) => sum + median(cpuPerUpload.get(u.name)!), 0) / set.length]),
  );
  const cpuTotal = Object.values(cpuOfMix).reduce((a, b) => a + b, 0);
  const rows: Row[] = [
    ...FITS.flatMap((fit) =>
      [1, IN_FLIGHT].map(
        (concurrency): Row => ({
          suite: 'decode',
          metric: `decode + preprocess ('${fit}'${fit === ENGINE_FIT ? ', the engine' : ''}), typical mix, ${concurrency} in flight`,
          value: round(median(throughput.get(`${fit} ${concurrency}`)!), 1),
          unit: 'img/s',
        }),
      ),
    ),
    ...formats.map((format): Row => {
      const count = set.filter((u) => u.format === format).length;
      return {
        suite: 'decode',
        metric: `CPU ms per image of the mix spent on ${format} ('${ENGINE_FIT}', one at a time)`,
        value: round(cpuOfMix[format], 1),
        unit: 'ms',
        note: `${count} of ${set.length} uploads, ${round((cpuOfMix[format] * set.length) / count, 1)} ms each; ${Math.round((100 * cpuOfMix[format]) / cpuTotal)} % of ${round(cpuTotal, 1)} ms`,
      };
    }),
    ...byMegapixels.map(({ megapixels, ms }): Row => ({ suite: 'decode', metric: `ms per image at ${megapixels} MP ('${ENGINE_FIT}', median over formats)`, value: ms, unit: 'ms' })),
  ];
  return { rows, detail: { images: set.length, byFormatMs: byFormat, cpuMsOfMixByFormat: cpuOfMix, byMegapixels, uploads: uploadsDetail } };
}
