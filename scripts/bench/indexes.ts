// The query suite's indexes over 10k / 100k / 1M clustered 64-d latents, built once and cached: the query suite
// times searches on them, the memory suite loads them and the 1M serving namespace (serving.ts) is built around the
// largest. Its own module so that query.ts and serving.ts both import it instead of each other.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VectorIndex, indexFileBytes, indexFiles } from '../../src/index/vector-index.js';
import { cachePath, round, type BenchContext } from './common.js';
import { LATENT_DIM, clusteredLatents } from './vectors.js';

export const INDEX_KEY_ID = 'bench';
/** The seed of the indexed latents (the query suite's ground truth is computed over the same draw). */
export const DATA_SEED = 1;

export function indexSizes(ctx: BenchContext): number[] {
  return ctx.quick ? [2_000] : [10_000, 100_000, 1_000_000];
}

export function indexDir(ctx: BenchContext, n: number): string {
  return cachePath(ctx, `index-${n}`);
}

/** Builds (once; cached and checksummed by VectorIndex) the engine's index over `n` latents. */
export async function ensureIndex(ctx: BenchContext, n: number): Promise<{ buildSeconds: number; bytes: number }> {
  const dir = indexDir(ctx, n);
  const infoPath = join(dir, 'build.json');
  const cached = await readFile(infoPath, 'utf8').catch(() => undefined);
  const saved = cached ? await VectorIndex.load(dir, INDEX_KEY_ID).catch(() => null) : null;
  if (saved) {
    // An index cached by an earlier version of the engine is saved again in the current format.
    if (!(await indexFiles(dir, INDEX_KEY_ID)).flat) await saved.save(dir);
    return { ...(JSON.parse(cached!) as { buildSeconds: number }), bytes: await indexFileBytes(dir, INDEX_KEY_ID) };
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  ctx.log(`query: building the ${n}-vector index (cached in ${dir})`);
  const data = clusteredLatents(n, DATA_SEED);
  const start = performance.now();
  const index = VectorIndex.create(INDEX_KEY_ID, LATENT_DIM, n);
  for (let i = 0; i < n; i++) {
    index.add(i, data.subarray(i * LATENT_DIM, (i + 1) * LATENT_DIM));
    if (i % 100_000 === 99_999) ctx.log(`query: ${i + 1}/${n} added`);
  }
  const buildSeconds = (performance.now() - start) / 1000;
  await index.save(dir);
  const info = { buildSeconds: round(buildSeconds, 1), bytes: await indexFileBytes(dir, INDEX_KEY_ID) };
  await writeFile(infoPath, JSON.stringify(info));
  return info;
}
