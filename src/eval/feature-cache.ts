/**
 * MobileNetV2 features (and dHashes) of evaluation images, cached on disk so that re-running the evaluation
 * or tuning the VAE never runs the image model twice on the same input. One cache per model version and
 * preprocessing; an entry is reused while its file keeps its size and modification time.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isAppError } from '../errors.js';
import type { FeatureExtractor } from '../ml/features.js';
import { preprocessImage } from '../ml/image.js';
import { applyTransform, dHash, type RobustnessTransform } from './transforms.js';

export type Fit = 'crop' | 'pad';
export type Background = 'grey' | 'white';
/** How an image becomes the model's input: square crop or letterbox, and the colour transparency is flattened onto. */
export type Preprocess = { fit: Fit; background: Background };
export const preprocessName = (p: Preprocess): string => (p.background === 'grey' ? p.fit : `${p.fit}-${p.background}`);

export type FeatureSource = { path: string; transform?: RobustnessTransform };

export type ExtractedSet = {
  dim: number;
  /** sources.length × dim, row-major; rows of failed sources are zero. */
  features: Float32Array;
  /** Two uint32 words of dHash per source. */
  hashes: Uint32Array;
  /** Index in `sources` → why that image could not be used. */
  failures: Map<number, string>;
};

type Entry = { size: number; mtimeMs: number; hash?: [number, number]; row?: number; error?: string };
type CacheHeader = { modelVersion: string; fit: string; dim: number; entries: Record<string, Entry> };

/** Changing how a transform or the hash is computed must invalidate old entries: bump this. */
const CACHE_SCHEMA = 1;
/** Images decoded while the model works on others; two cores do not gain from more. */
const IN_FLIGHT = 4;

export function cacheFileStem(cacheDir: string, modelVersion: string, fit: string): string {
  const key = createHash('sha256').update(`${CACHE_SCHEMA}\n${modelVersion}\n${fit}`).digest('hex').slice(0, 16);
  return path.join(cacheDir, `features-${fit}-${key}`);
}

async function readCache(stem: string, modelVersion: string, fit: string): Promise<{ header: CacheHeader; data: Float32Array }> {
  try {
    const header = JSON.parse(await readFile(`${stem}.json`, 'utf8')) as CacheHeader;
    const bytes = await readFile(`${stem}.f32`);
    const data = new Float32Array(bytes.byteLength / 4);
    new Uint8Array(data.buffer).set(bytes);
    if (header.modelVersion === modelVersion && header.fit === fit) return { header, data };
  } catch {
    // Missing or unreadable: start afresh.
  }
  return { header: { modelVersion, fit, dim: 0, entries: {} }, data: new Float32Array(0) };
}

async function writeAtomically(file: string, content: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, content);
  await rename(tmp, file);
}

const entryKey = (source: FeatureSource): string => `${source.path}\t${source.transform ?? ''}`;

export type ExtractOptions = {
  extractor: FeatureExtractor;
  fit: Fit;
  background?: Background;
  cacheDir: string;
  onProgress?: (done: number, total: number) => void;
};

export async function extractWithCache(sources: FeatureSource[], options: ExtractOptions): Promise<ExtractedSet> {
  const { extractor, fit, cacheDir } = options;
  const background = options.background ?? 'grey';
  const name = preprocessName({ fit, background });
  const dim = extractor.dim;
  await mkdir(cacheDir, { recursive: true });
  const stem = cacheFileStem(cacheDir, extractor.modelVersion, name);
  const cache = await readCache(stem, extractor.modelVersion, name);
  const rows: Float32Array[] = [];
  for (let r = 0; r * dim < cache.data.length; r++) rows.push(cache.data.subarray(r * dim, (r + 1) * dim));

  const features = new Float32Array(sources.length * dim);
  const hashes = new Uint32Array(sources.length * 2);
  const failures = new Map<number, string>();
  let changed = false;
  let done = 0;
  const use = (i: number, entry: Entry): void => {
    if (entry.error !== undefined) failures.set(i, entry.error);
    else {
      features.set(rows[entry.row!], i * dim);
      hashes.set(entry.hash!, i * 2);
    }
  };

  const compute = async (source: FeatureSource): Promise<Entry> => {
    const info = await stat(source.path);
    const base = { size: info.size, mtimeMs: info.mtimeMs };
    try {
      const original = new Uint8Array(await readFile(source.path));
      const bytes = source.transform ? new Uint8Array(await applyTransform(original, source.transform)) : original;
      // The engine's own checks first, so a refused image is reported with the engine's message.
      const { input } = await preprocessImage(bytes, { fit, background });
      const hash = await dHash(bytes);
      rows.push(await options.extractor.extract(input));
      return { ...base, hash, row: rows.length - 1 };
    } catch (error) {
      // Model failures are faults of the run, not of the image: let them stop the evaluation.
      if (isAppError(error) && (error.code === 'INFERENCE_FAILED' || error.code === 'MODEL_MISSING' || error.code === 'MODEL_INVALID')) {
        throw error;
      }
      return { ...base, error: error instanceof Error ? error.message : String(error) };
    }
  };

  let next = 0;
  const work = async (): Promise<void> => {
    while (next < sources.length) {
      const i = next++;
      const key = entryKey(sources[i]);
      let entry: Entry | undefined = cache.header.entries[key];
      if (entry) {
        const info = await stat(sources[i].path);
        if (info.size !== entry.size || info.mtimeMs !== entry.mtimeMs) entry = undefined;
      }
      if (!entry) {
        entry = await compute(sources[i]);
        cache.header.entries[key] = entry;
        changed = true;
      }
      use(i, entry);
      options.onProgress?.(++done, sources.length);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, work));

  if (changed) {
    const data = new Float32Array(rows.length * dim);
    rows.forEach((row, r) => data.set(row, r * dim));
    await writeAtomically(`${stem}.f32`, new Uint8Array(data.buffer));
    await writeAtomically(`${stem}.json`, JSON.stringify({ ...cache.header, dim }));
  }
  return { dim, features, hashes, failures };
}
