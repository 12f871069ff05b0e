/**
 * Which vectors a namespace's index is keyed on, and the id that names them (in index file names, judgements and
 * trial state). Apart from namespace.ts so that the index builders can name what they build without importing it.
 */
import { isLinearKeyId } from '../ml/linear-key.js';

/**
 * The raw MobileNetV2 features until the namespace has its own VAE (or PCA key); `style` names the poster offsets
 * taken out of them once a style trial was adopted (style-key.ts).
 */
export type ActiveKey = ({ kind: 'raw' } | { kind: 'vae'; vaeId: string }) & { style?: string };

const RAW_KEY_ID = 'raw';

/** A linear key is kept in the VAE's format (linear-key.ts) but named for what it is: `pca64-…`, `lw96-…`; a style key adds `+style-…`. */
export function keyIdOf(key: ActiveKey): string {
  const base = key.kind === 'raw' ? RAW_KEY_ID : isLinearKeyId(key.vaeId) ? key.vaeId : `vae-${key.vaeId}`;
  return key.style === undefined ? base : `${base}+style-${key.style}`;
}

export function withoutStyle(key: ActiveKey): ActiveKey {
  const { style: _style, ...base } = key;
  return base as ActiveKey;
}
