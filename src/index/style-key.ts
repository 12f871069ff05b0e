/**
 * A style key: the namespace's key with each poster's mean style taken out. On the card decks, where every deck's
 * artist posts their own deck, subtracting each poster's mean unit key lifted P@20 by 62 % (the same card drawn by
 * another artist comes up instead of the same artist's other cards); where a poster *is* a subject (one person posts
 * only cats) it costs up to 0.16 P@20 (docs/relevance.md, "Style"). No label-free signal told the two apart, so a
 * style key is only ever served as a trial the askers' judgements decide (style-trial.ts).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError } from '../errors.js';
import { writeFileAtomically } from '../util/atomic-file.js';
import type { ImageRecord } from './image-record.js';

/** Shrinkage: a poster's offset is its mean times n/(n + λ), so a poster with few images moves them little. */
export const STYLE_SHRINKAGE = 10;
/** A style key is tried only when at least this many posters have at least STYLE_MIN_IMAGES images each. */
export const STYLE_MIN_POSTERS = 2;
export const STYLE_MIN_IMAGES = 10;
/**
 * Collections larger than this get no style trial. Its fit and index build run in a worker (build-index.ts), but
 * while it runs the namespace holds a second index beside its own (≈ 0.5 GB at 1M, see Namespace.activate: a third of
 * the 1.5 GB the 1M target allows), and the build's worker holds every key until the offsets are fitted.
 */
export const STYLE_MAX_IMAGES = 100_000;

export interface StyleOffsets {
  /** Unique per fit; part of the key id, so judgements and index files name the fit they were made with. */
  id: string;
  dim: number;
  /** Each poster's shrunk mean of unit keys. Posters not in the map (new, or unknown) are not moved. */
  offsets: Map<string, Float32Array>;
}

/** Who posted an image, as the style key sees it: the author of its first post (the bot), none for the CLI. */
export function posterOf(record: Pick<ImageRecord, 'refs'>): string | undefined {
  return record.refs[0]?.extra?.authorId;
}

/** The style key of one image: its unit key minus its poster's offset. */
export function styled(key: Float32Array, offset: Float32Array | undefined): Float32Array {
  let norm = 0;
  for (let i = 0; i < key.length; i++) norm += key[i] * key[i];
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  const out = new Float32Array(key.length);
  for (let i = 0; i < key.length; i++) out[i] = key[i] * scale - (offset ? offset[i] : 0);
  return out;
}

/** A base key with its poster's style taken out (none without a style; a poster not fitted is not moved). */
export function withStyle(base: Float32Array, poster: string | undefined, style: StyleOffsets | undefined): Float32Array {
  return style ? styled(base, style.offsets.get(poster ?? '')) : base;
}

/** Whether the images' posters (one per image; undefined: none) are enough to try a style key (STYLE_MIN_POSTERS). */
export function enoughPosters(posters: Iterable<string | undefined>): boolean {
  const counts = new Map<string, number>();
  for (const poster of posters) if (poster !== undefined) counts.set(poster, (counts.get(poster) ?? 0) + 1);
  let enough = 0;
  for (const n of counts.values()) if (n >= STYLE_MIN_IMAGES) enough += 1;
  return enough >= STYLE_MIN_POSTERS;
}

/** Sums unit keys per poster, then shrinks each mean towards zero. */
export class StyleFit {
  private readonly sums = new Map<string, { sum: Float64Array; n: number }>();

  constructor(readonly dim: number) {}

  add(poster: string | undefined, key: Float32Array): void {
    if (poster === undefined) return;
    let entry = this.sums.get(poster);
    if (!entry) this.sums.set(poster, (entry = { sum: new Float64Array(this.dim), n: 0 }));
    const unit = styled(key, undefined);
    for (let i = 0; i < this.dim; i++) entry.sum[i] += unit[i];
    entry.n += 1;
  }

  finish(id: string, lambda = STYLE_SHRINKAGE): StyleOffsets {
    const offsets = new Map<string, Float32Array>();
    for (const [poster, { sum, n }] of this.sums) {
      const scale = 1 / (n + lambda);
      offsets.set(poster, Float32Array.from(sum, (x) => x * scale));
    }
    return { id, dim: this.dim, offsets };
  }
}

interface StyleFile {
  format: 1;
  id: string;
  dim: number;
  /** poster → base64 of the offset as float32. */
  offsets: Record<string, string>;
}

export function styleFileName(id: string): string {
  return `style-${id}.json`;
}

function styleFile(dir: string, id: string): string {
  return join(dir, styleFileName(id));
}

export async function saveStyle(dir: string, style: StyleOffsets): Promise<void> {
  const offsets: Record<string, string> = {};
  for (const [poster, offset] of style.offsets) offsets[poster] = Buffer.from(offset.buffer, offset.byteOffset, offset.byteLength).toString('base64');
  const file: StyleFile = { format: 1, id: style.id, dim: style.dim, offsets };
  await writeFileAtomically(styleFile(dir, style.id), JSON.stringify(file));
}

export async function loadStyle(dir: string, id: string): Promise<StyleOffsets> {
  let file: StyleFile;
  try {
    file = JSON.parse(await readFile(styleFile(dir, id), 'utf8')) as StyleFile;
  } catch (error) {
    throw new AppError('INDEX_CORRUPT', `The style key ${id} cannot be read (${error instanceof Error ? error.message : String(error)}).`);
  }
  const offsets = new Map<string, Float32Array>();
  for (const [poster, b64] of Object.entries(file.offsets)) {
    const bytes = Buffer.from(b64, 'base64');
    if (bytes.length !== file.dim * 4) throw new AppError('INDEX_CORRUPT', `The style key ${id} holds an offset of the wrong size.`);
    offsets.set(poster, new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));
  }
  return { id: file.id, dim: file.dim, offsets };
}
