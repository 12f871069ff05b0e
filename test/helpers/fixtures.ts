import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import sharp from 'sharp';

/** Tests run from dist/test; fixtures stay in the source tree. */
export const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
export const REFERENCE_PHOTOS = join(FIXTURES, 'reference');

export async function referencePhotoPaths(): Promise<string[]> {
  const names = (await readdir(REFERENCE_PHOTOS)).filter((n) => /\.(png|jpg)$/.test(n)).sort();
  return names.map((n) => join(REFERENCE_PHOTOS, n));
}

/** A near-duplicate as people post them: downscaled and re-encoded as JPEG. */
export async function nearDuplicate(path: string): Promise<Buffer> {
  const image = sharp(await readFile(path));
  const { width = 400 } = await image.metadata();
  return image.resize(Math.round(width * 0.6)).jpeg({ quality: 70 }).toBuffer();
}

/** A light repost: downscaled to three quarters and re-encoded as JPEG quality 85 (raw-feature cosine ≥ 0.99 on every reference photo). */
export async function lightRepost(path: string): Promise<Buffer> {
  const image = sharp(await readFile(path));
  const { width = 400 } = await image.metadata();
  return image.resize(Math.round(width * 0.75)).jpeg({ quality: 85 }).toBuffer();
}

/** Deterministic variants of a photo (crops, flips, tints), to give a VAE enough images to train on. */
export async function variants(path: string, count: number): Promise<Buffer[]> {
  const bytes = await readFile(path);
  const { width = 224, height = 224 } = await sharp(bytes).metadata();
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const scale = 0.7 + 0.05 * (i % 5);
    const w = Math.round(width * scale);
    const h = Math.round(height * scale);
    const left = Math.round(((width - w) * (i % 3)) / 2);
    const top = Math.round(((height - h) * ((i + 1) % 3)) / 2);
    let image = sharp(bytes).extract({ left, top, width: w, height: h });
    if (i % 2 === 1) image = image.flop();
    image = image.modulate({ brightness: 0.9 + 0.04 * (i % 5), saturation: 0.8 + 0.1 * (i % 4) });
    out.push(await image.png().toBuffer());
  }
  return out;
}
