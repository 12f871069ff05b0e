// preprocessImage flattens transparency after the resize (on 224×224 pixels) rather than before it (on the full
// image). This checks that against the order it replaced, reproduced here with sharp: flatten the full-size image,
// then resize. Same pixels within rounding, same features within a tight cosine, for both fits and backgrounds.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { cosine } from '../src/index/near-duplicates.js';
import { createFeatureExtractor, type FeatureExtractor } from '../src/ml/features.js';
import { preprocessImage, type Background } from '../src/ml/image.js';
import { MODEL_PREPROCESSING, findPackageRoot } from '../src/ml/onnx-model.js';

const SIZE = 224;
const PHOTO = join(findPackageRoot(), 'test', 'fixtures', 'reference', 'cat.png');
const COLOURS: Record<Background, { r: number; g: number; b: number; alpha: number }> = {
  grey: { r: MODEL_PREPROCESSING.backgrounds.grey[0], g: MODEL_PREPROCESSING.backgrounds.grey[1], b: MODEL_PREPROCESSING.backgrounds.grey[2], alpha: 1 },
  white: { r: 255, g: 255, b: 255, alpha: 1 },
};

/**
 * A 900×600 photo with an alpha channel: a horizontal ramp from opaque to clear, a fully transparent block whose
 * hidden colour is saturated magenta (it must not bleed into its neighbours), and a half-transparent disc.
 */
async function transparentPhoto(): Promise<Buffer> {
  const width = 900;
  const height = 600;
  const rgb = await sharp(PHOTO).resize(width, height, { fit: 'fill' }).removeAlpha().raw().toBuffer();
  const rgba = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      let alpha = Math.round(255 * Math.min(1, Math.max(0, (800 - x) / 500)));
      const hidden = x >= 100 && x < 300 && y >= 100 && y < 250;
      if (hidden) alpha = 0;
      if ((x - 600) ** 2 + (y - 400) ** 2 < 120 ** 2) alpha = 128;
      rgba.set(hidden ? [255, 0, 255] : rgb.subarray(p * 3, p * 3 + 3), p * 4);
      rgba[p * 4 + 3] = alpha;
    }
  }
  return sharp(rgba, { raw: { width, height, channels: 4 } }).png().toBuffer();
}

/** The order preprocessImage used before: flatten the whole image, then crop or letterbox, then resize. */
async function flattenFirst(bytes: Buffer, fit: 'crop' | 'pad', background: Background): Promise<Float32Array> {
  const colour = COLOURS[background];
  const { width = 0, height = 0 } = await sharp(bytes).metadata();
  const side = Math.min(width, height);
  const flat = sharp(bytes).rotate().flatten({ background: colour });
  const sized =
    fit === 'pad'
      ? flat.resize(SIZE, SIZE, { fit: 'contain', background: colour, kernel: 'linear' })
      : flat
          .extract({ left: Math.floor((width - side) / 2), top: Math.floor((height - side) / 2), width: side, height: side })
          .resize(SIZE, SIZE, { fit: 'fill', kernel: 'linear' });
  const pixels = await sized.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer();
  return Float32Array.from(pixels, (v) => v / 127.5 - 1);
}

/** Differences in 0-255 levels. */
function levelDiff(a: Float32Array, b: Float32Array): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const levels = Math.round(Math.abs(a[i] - b[i]) * 127.5);
    max = Math.max(max, levels);
    sum += levels;
  }
  return { max, mean: sum / a.length };
}

describe('flattening transparency after the resize', () => {
  let extractor: FeatureExtractor;
  let bytes: Buffer;

  before(async () => {
    extractor = await createFeatureExtractor();
    bytes = await transparentPhoto();
  });
  after(() => extractor?.close());

  for (const fit of ['pad', 'crop'] as const) {
    for (const background of ['grey', 'white'] as const) {
      it(`matches flattening first: fit ${fit}, ${background} background`, async () => {
        const before = await flattenFirst(bytes, fit, background);
        const now = await preprocessImage(bytes, { fit, background });
        assert.equal(now.input.length, SIZE * SIZE * 3);
        // sharp rounds the premultiplied pixels to bytes before resizing: a few levels at most, a fraction on average.
        const { max, mean } = levelDiff(before, now.input);
        assert.ok(max <= 3 && mean <= 0.5, `pixels differ by up to ${max} levels, ${mean} on average`);
        const similarity = cosine(await extractor.extract(before), await extractor.extract(now.input));
        assert.ok(similarity >= 0.999, `features cosine ${similarity}`);
        // The bytes the thumbnail is made from are the same pixels.
        assert.deepEqual(Float32Array.from(now.pixels, (v) => v / 127.5 - 1), now.input);
      });
    }
  }

  it('letterboxes a transparent image with the background colour, opaque', async () => {
    const { r, g, b } = COLOURS.white;
    const { pixels } = await preprocessImage(bytes, { fit: 'pad', background: 'white' });
    // 900×600 letterboxed: bands of (224 - 149) / 2 rows above and below.
    assert.deepEqual([...pixels.subarray(0, 3)], [r, g, b]);
    assert.deepEqual([...pixels.subarray(pixels.length - 3)], [r, g, b]);
  });
});
