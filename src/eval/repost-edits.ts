/**
 * Edited copies for the repost measurement (scripts/repost-eval.ts): the edits an image goes through before someone
 * posts it again, each with parameters drawn from a seeded generator, so two seeds give two different sets of copies.
 * Unlike the fixed edits of transforms.ts (one setting each, for the retrain gate), these span a range per kind.
 */
import sharp from 'sharp';
import { MAX_INPUT_PIXELS } from '../ml/image.js';
import { overlayText } from '../ml/transforms.js';

export const REPOST_EDITS = ['reencode', 'resize', 'crop', 'recolour', 'text', 'meme'] as const;
export type RepostEdit = (typeof REPOST_EDITS)[number];

const CAPTIONS = ['reposted lol', 'found this', 'so true', 'MOOD', 'credit to the artist', 'look at this'];

/** The edit `kind` of `bytes` with parameters from `random`; returns the copy's bytes and a short description. */
export async function repostCopy(bytes: Uint8Array, kind: RepostEdit, random: () => number): Promise<{ bytes: Buffer; description: string }> {
  const between = (low: number, high: number) => low + (high - low) * random();
  // Transparency flattened onto white, as the engine's namespaces do: JPEG has no alpha.
  const { data, info } = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS })
    .rotate()
    .flatten({ background: { r: 255, g: 255, b: 255 } })
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  const image = () => sharp(data, { raw: { width, height, channels } });
  const caption = () => {
    const options = { text: CAPTIONS[Math.floor(random() * CAPTIONS.length)], at: random() < 0.5 ? between(0.1, 0.2) : between(0.88, 0.96), size: between(0.06, 0.12) };
    return { input: overlayText(width, height, options), description: `"${options.text}" at ${options.at.toFixed(2)}, ${(options.size * 100).toFixed(0)}%` };
  };
  const scaled = (scale: number) => image().resize(Math.max(8, Math.round(width * scale)), Math.max(8, Math.round(height * scale)));
  switch (kind) {
    case 'reencode': {
      const quality = Math.round(between(20, 60));
      return { bytes: await image().jpeg({ quality }).toBuffer(), description: `JPEG q${quality}` };
    }
    case 'resize': {
      const scale = between(0.25, 0.6);
      return { bytes: await scaled(scale).png().toBuffer(), description: `×${scale.toFixed(2)}` };
    }
    case 'crop': {
      // "A little": up to a tenth off each side, each side on its own.
      const [l, r, t, b] = [0, 0, 0, 0].map(() => between(0.02, 0.1));
      const left = Math.floor(width * l);
      const top = Math.floor(height * t);
      const w = Math.max(1, width - left - Math.floor(width * r));
      const h = Math.max(1, height - top - Math.floor(height * b));
      return { bytes: await image().extract({ left, top, width: w, height: h }).png().toBuffer(), description: `crop ${[l, r, t, b].map((f) => (f * 100).toFixed(0)).join('/')}%` };
    }
    case 'recolour': {
      const hue = Math.round(between(15, 60)) * (random() < 0.5 ? -1 : 1);
      const saturation = between(0.6, 1.4);
      const brightness = between(0.85, 1.15);
      return {
        bytes: await image().modulate({ hue, saturation, brightness }).png().toBuffer(),
        description: `hue ${hue}, sat ${saturation.toFixed(2)}, bright ${brightness.toFixed(2)}`,
      };
    }
    case 'text': {
      const text = caption();
      return { bytes: await image().composite([{ input: text.input }]).png().toBuffer(), description: text.description };
    }
    case 'meme': {
      // What a repost usually is: captioned, shrunk and re-encoded, one after the other.
      const text = caption();
      const captioned = await image().composite([{ input: text.input }]).png().toBuffer();
      const scale = between(0.4, 0.8);
      const quality = Math.round(between(40, 75));
      const shrunk = sharp(captioned).resize(Math.max(8, Math.round(width * scale)), Math.max(8, Math.round(height * scale)));
      return { bytes: await shrunk.jpeg({ quality }).toBuffer(), description: `${text.description}, ×${scale.toFixed(2)}, JPEG q${quality}` };
    }
  }
}
