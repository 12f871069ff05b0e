/**
 * Who posted each image of a labelled set, simulated for the style trial's evaluation: the style key helps when a
 * poster is a style (each card deck's artist posting their own deck) and hurts when a poster is a subject (one
 * person posting one class), so the trial is measured under both and under posters that are neither.
 */
import { mulberry32 } from '../util/random.js';
import type { LabelledImage } from './dataset.js';

export const POSTER_SCHEMES = ['none', 'folder', 'random', 'coarse80'] as const;
export type PosterScheme = (typeof POSTER_SCHEMES)[number];

/**
 * `folder`: the image's folder under the set's root (card decks: its deck, a style; openclipart: its class, a
 * subject). `random`: one of 20 posters at random. `coarse80`: one poster per coarse label, who posts 80 % of that
 * label's images (the rest go to a random poster). `none`: no poster (the CLI).
 */
export function assignPosters(images: readonly LabelledImage[], root: string, scheme: PosterScheme, seed: number): Array<string | undefined> {
  const random = mulberry32(seed * 7919 + 17);
  const coarse = [...new Set(images.map((image) => image.coarse))];
  return images.map((image) => {
    switch (scheme) {
      case 'none':
        return undefined;
      case 'folder':
        return image.path.slice(root.length + 1).split('/')[0];
      case 'random':
        return `poster${Math.floor(random() * 20)}`;
      case 'coarse80':
        return random() < 0.8 ? `poster-${image.coarse}` : `poster-${coarse[Math.floor(random() * coarse.length)]}`;
    }
  });
}
