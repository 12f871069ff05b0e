// The bench's store measurement on its own (what `npm run bench -- --only memory` runs at 20k, without the memory
// suite's 100k retrain and 1M fixtures): bytes per image of a store as the bot keeps it, with and without thumbnails,
// in the previous release's form, that store opened (brought to the current form, vacuumed) and the current form, at each size.
//   node dist/scripts/store-size.js [--images 20000,100000] [--features real,synthetic] [--thumbnails yes,no] [--cache bench-cache] [--json out.json]
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { loadAverage, round, type BenchContext } from './bench/common.js';
import { thumbnailPool } from './bench/serving.js';
import { botStoreSizes, realFeatures, type BotStoreSizes } from './bench/store-size.js';
import { baseFeatures, syntheticFeatures } from './bench/vectors.js';
import { parseScriptArgs } from './script-args.js';

const USAGE = 'usage: node dist/scripts/store-size.js [--images 20000,100000] [--features real,synthetic] [--thumbnails yes,no] [--cache bench-cache] [--json out.json]';
const { values } = parseScriptArgs(
  {
    options: {
      images: { type: 'string', default: '20000' },
      features: { type: 'string', default: 'real,synthetic' },
      thumbnails: { type: 'string', default: 'yes,no' },
      cache: { type: 'string', default: 'bench-cache' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  },
  USAGE,
);
const list = (text: string) => text.split(',').map((s) => s.trim()).filter(Boolean);
const sizes = list(values.images).map(Number);
const kinds = list(values.features);
const withThumbnails = list(values.thumbnails);
if (sizes.some((n) => !Number.isInteger(n) || n < 1) || kinds.some((k) => k !== 'real' && k !== 'synthetic') || withThumbnails.some((t) => t !== 'yes' && t !== 'no')) {
  console.error(USAGE);
  process.exit(2);
}

// The full bench's cache: the same base features and thumbnails (the 96 bench uploads' thumbnails) as its runs.
const ctx: BenchContext = {
  quick: false,
  runId: new Date().toISOString(),
  cacheDir: resolve(values.cache, 'full'),
  log: (message) => process.stderr.write(`[store-size ${new Date().toISOString().slice(11, 19)}] ${message}\n`),
};
const base = await baseFeatures(ctx);
const pool = withThumbnails.includes('yes') ? await thumbnailPool(ctx) : [];
// The serving fixture's features (seeded per batch of 1,000, as serving.ts writes them) or the real ones cycled.
const featuresOf = (kind: string) => (from: number, rows: number) => (kind === 'real' ? realFeatures(base, from, rows) : syntheticFeatures(base, rows, 500 + from));
const results: Array<BotStoreSizes & { features: string }> = [];
for (const n of sizes) {
  for (const kind of kinds) {
    for (const thumbnails of withThumbnails) {
      ctx.log(`${n} images, ${kind} features, thumbnails ${thumbnails} (load average ${loadAverage().join(' ')})`);
      const result = await botStoreSizes(resolve(ctx.cacheDir, 'store-size-script'), n, featuresOf(kind), thumbnails === 'yes' ? pool : []);
      results.push({ ...result, features: kind });
      console.log(
        `${n} bot-shaped images, ${kind} features, ${thumbnails === 'yes' ? `thumbnails (${result.thumbnailBytes} B)` : 'no thumbnails'}: ` +
          `previous form ${result.previous} B, that store opened ${result.opened} B (${result.openSeconds} s), now ${result.now} B (written in ${result.writeSeconds} s, ${round(n / result.writeSeconds)} images/s); ` +
          `load ${result.loadBefore.join(' ')} → ${result.loadAfter.join(' ')}`,
      );
      for (const [label, tables] of [['now', result.tables], ['previous', result.previousTables]] as const) {
        console.log(`  ${label}: ${Object.entries(tables).map(([name, t]) => `${name} ${t.bytes} B (${t.unused} unused)`).join(', ')}`);
      }
    }
  }
}
if (values.json) await writeFile(values.json, `${JSON.stringify(results, null, 2)}\n`);
