// Deterministic stand-ins for Discord uploads: the reference photos scaled to phone and screenshot sizes, with
// grain so that encoders see photo-like detail (a smooth upscale would compress, and decode, unrealistically fast).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { cachePath, type BenchContext } from './common.js';
import { referencePhotos } from './vectors.js';

export type UploadFormat = 'jpeg' | 'png' | 'webp' | 'gif';

export interface UploadSpec {
  name: string;
  format: UploadFormat;
  megapixels: number;
  width: number;
  height: number;
}

export interface Upload extends UploadSpec {
  bytes: Buffer;
}

/** A server's mix: mostly JPEG photos and PNG art/screenshots, some WebP, a few GIFs (which are small). */
const FORMAT_CYCLE: UploadFormat[] = ['jpeg', 'png', 'jpeg', 'webp', 'png', 'jpeg', 'gif', 'jpeg'];
const MEGAPIXEL_CYCLE = [0.3, 1, 2, 12, 0.5, 3, 1.5, 5, 0.8, 8, 2, 1];
const ASPECTS = [4 / 3, 1, 16 / 9, 3 / 4, 9 / 16];
const GIF_MAX_MEGAPIXELS = 1;

export function uploadSpecs(count: number, maxMegapixels = Infinity): UploadSpec[] {
  return Array.from({ length: count }, (_, i) => {
    const format = FORMAT_CYCLE[i % FORMAT_CYCLE.length];
    const cap = Math.min(maxMegapixels, format === 'gif' ? GIF_MAX_MEGAPIXELS : Infinity);
    const megapixels = Math.min(MEGAPIXEL_CYCLE[i % MEGAPIXEL_CYCLE.length], cap);
    const aspect = ASPECTS[i % ASPECTS.length];
    const width = Math.round(Math.sqrt(megapixels * 1e6 * aspect));
    const height = Math.round((megapixels * 1e6) / width);
    return { name: `${String(i).padStart(3, '0')}-${megapixels}mp.${format}`, format, megapixels, width, height };
  });
}

async function render(spec: UploadSpec, photo: Buffer, index: number): Promise<Buffer> {
  const grain = await sharp({
    create: { width: spec.width, height: spec.height, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 12 } },
  })
    .png()
    .toBuffer();
  const image = sharp(photo)
    .resize(spec.width, spec.height, { fit: 'cover' })
    .modulate({ hue: (index * 37) % 360 })
    .composite([{ input: grain, blend: 'soft-light' }]);
  switch (spec.format) {
    case 'jpeg':
      return image.jpeg({ quality: 85 }).toBuffer();
    case 'png':
      return image.png({ compressionLevel: 6 }).toBuffer();
    case 'webp':
      return image.webp({ quality: 80 }).toBuffer();
    case 'gif':
      return image.gif().toBuffer();
  }
}

/** Generates (once; cached on disk) and returns `count` uploads; the quick run keeps them small. */
export async function uploads(ctx: BenchContext, count: number): Promise<Upload[]> {
  const dir = cachePath(ctx, 'uploads');
  await mkdir(dir, { recursive: true });
  const photos = await referencePhotos();
  const out: Upload[] = [];
  for (const [i, spec] of uploadSpecs(count, ctx.quick ? 0.3 : Infinity).entries()) {
    const path = join(dir, spec.name);
    const cached = await readFile(path).catch(() => undefined);
    const bytes = cached ?? (await render(spec, photos[i % photos.length], i));
    if (!cached) await writeFile(path, bytes);
    out.push({ ...spec, bytes });
  }
  return out;
}
