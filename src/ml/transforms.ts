/**
 * The edits a shared image typically goes through before someone posts it again, applied to the original
 * bytes, and the perceptual-hash baseline they are measured against.
 */
import sharp from 'sharp';
import { MAX_INPUT_PIXELS } from './image.js';
import { MODEL_PREPROCESSING } from './onnx-model.js';

export const ROBUSTNESS_TRANSFORMS = ['crop70', 'flip', 'colour', 'jpeg30', 'down25', 'text'] as const;
export type RobustnessTransform = (typeof ROBUSTNESS_TRANSFORMS)[number];

const [GREY_R, GREY_G, GREY_B] = MODEL_PREPROCESSING.backgrounds.grey;
const FLATTEN = { grey: { r: GREY_R, g: GREY_G, b: GREY_B }, white: { r: 255, g: 255, b: 255 } } as const;

/** A caption as people add them; `at` is the baseline as a fraction of the height, `size` the font size as one. */
export function overlayText(width: number, height: number, caption: { text?: string; at?: number; size?: number } = {}): Buffer {
  const size = Math.max(8, Math.round(height * (caption.size ?? 0.08)));
  const y = caption.at === undefined ? height - size : Math.round(height * caption.at);
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<text x="50%" y="${y}" font-family="DejaVu Sans, sans-serif" font-size="${size}" font-weight="bold" ` +
      `text-anchor="middle" fill="white" stroke="black" stroke-width="${Math.max(1, size / 12)}">${caption.text ?? 'reposted lol'}</text></svg>`,
  );
}

/**
 * PNG (or JPEG for jpeg30) bytes of the edited image. Alpha is flattened first onto the background the model's
 * preprocessing uses, so that JPEG (which has no alpha) does not turn transparent clip art black: that would
 * measure the flattening colour, not the edit.
 */
export async function applyTransform(bytes: Uint8Array, transform: RobustnessTransform, background: keyof typeof FLATTEN = 'grey'): Promise<Buffer> {
  const { data, info } = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS })
    .rotate()
    .flatten({ background: FLATTEN[background] })
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  const image = () => sharp(data, { raw: { width, height, channels } });
  switch (transform) {
    case 'crop70': {
      const w = Math.max(1, Math.round(width * 0.7));
      const h = Math.max(1, Math.round(height * 0.7));
      // Off-centre, as a person cropping to a detail would: the model's own centre crop cannot undo it.
      return image().extract({ left: Math.floor((width - w) * 0.25), top: Math.floor((height - h) * 0.25), width: w, height: h }).png().toBuffer();
    }
    case 'flip':
      return image().flop().png().toBuffer();
    case 'colour':
      return image().modulate({ hue: 40, saturation: 1.3, brightness: 1.1 }).png().toBuffer();
    case 'jpeg30':
      return image().jpeg({ quality: 30 }).toBuffer();
    case 'down25':
      return image()
        .resize(Math.max(8, Math.round(width / 4)), Math.max(8, Math.round(height / 4)), { fit: 'fill' })
        .png()
        .toBuffer();
    case 'text':
      return image().composite([{ input: overlayText(width, height) }]).png().toBuffer();
  }
}

/** dHash (Krawetz): 64 bits, one per horizontally adjacent pair of a 9×8 grey thumbnail, as two uint32 words. */
export async function dHash(bytes: Uint8Array): Promise<[number, number]> {
  const grey = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS })
    .rotate()
    .flatten({ background: FLATTEN.grey })
    .greyscale()
    .resize(9, 8, { fit: 'fill' })
    .raw()
    .toBuffer();
  const words: [number, number] = [0, 0];
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 8; x++) {
      if (grey[y * 9 + x] > grey[y * 9 + x + 1]) {
        const bit = y * 8 + x;
        words[bit >> 5] = (words[bit >> 5] | (1 << (bit & 31))) >>> 0;
      }
    }
  }
  return words;
}

function popcount(v: number): number {
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export function hammingDistance(a: readonly [number, number], b: readonly [number, number]): number {
  return popcount((a[0] ^ b[0]) >>> 0) + popcount((a[1] ^ b[1]) >>> 0);
}
