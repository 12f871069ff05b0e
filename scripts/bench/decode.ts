// sharp decode + preprocessing (bytes → 224×224 tensor) on generated uploads, one at a time and with several in
// flight as the CLI and the bot run it.
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

async function imagesPerSecond(set: Upload[], concurrency: number): Promise<number> {
  const start = performance.now();
  await inFlight(set, concurrency, (u) => preprocessImage(u.bytes));
  return (set.length * 1000) / (performance.now() - start);
}

export async function benchDecode(ctx: BenchContext): Promise<SuiteResult> {
  const set = await uploads(ctx, ctx.quick ? 4 : 48);
  const reps = ctx.quick ? 1 : 3;
  for (const u of set.slice(0, 4)) await preprocessImage(u.bytes);

  const perUpload = new Map<string, number[]>();
  const throughput = new Map<number, number[]>();
  for (let rep = 0; rep < reps; rep++) {
    for (const u of set) {
      const start = performance.now();
      await preprocessImage(u.bytes);
      perUpload.set(u.name, [...(perUpload.get(u.name) ?? []), performance.now() - start]);
    }
    for (const concurrency of [1, IN_FLIGHT]) throughput.set(concurrency, [...(throughput.get(concurrency) ?? []), await imagesPerSecond(set, concurrency)]);
    ctx.log(`decode: round ${rep + 1}/${reps}`);
  }

  const uploadsDetail = set.map((u) => ({
    name: u.name,
    format: u.format,
    megapixels: u.megapixels,
    bytes: u.bytes.length,
    ms: round(median(perUpload.get(u.name)!), 1),
  }));
  const byFormat: Record<string, number> = {};
  for (const format of new Set(set.map((u) => u.format))) {
    byFormat[format] = round(median(uploadsDetail.filter((u) => u.format === format).map((u) => u.ms)), 1);
  }
  const byMegapixels = [...new Set(set.map((u) => u.megapixels))]
    .sort((a, b) => a - b)
    .map((mp) => ({ megapixels: mp, ms: round(median(uploadsDetail.filter((u) => u.megapixels === mp).map((u) => u.ms)), 1) }));
  const rows: Row[] = [
    ...[1, IN_FLIGHT].map(
      (concurrency): Row => ({
        suite: 'decode',
        metric: `decode + preprocess, typical mix, ${concurrency} in flight`,
        value: round(median(throughput.get(concurrency)!), 1),
        unit: 'img/s',
      }),
    ),
    ...byMegapixels.map(({ megapixels, ms }): Row => ({ suite: 'decode', metric: `ms per image at ${megapixels} MP (median over formats)`, value: ms, unit: 'ms' })),
  ];
  return { rows, detail: { images: set.length, byFormatMs: byFormat, byMegapixels, uploads: uploadsDetail } };
}
