/**
 * Indexing one upload into a namespace: known bytes become one more reference of the stored image (one feature row
 * per content, one reference per post); new bytes are decoded outside the store's lock, then stored and indexed
 * under it, checking again for the same bytes stored meanwhile.
 */
import type { ImagePipeline } from '../ml/pipeline.js';
import { sha256 } from '../util/atomic-file.js';
import type { Namespace } from './namespace.js';
import { posterOf } from './style-key.js';
import { throughReference, type ImageRecord, type ImageReference } from './store.js';

/** One post of an image: `source` identifies it (a second post of the same bytes becomes a second reference). */
export interface IndexMeta {
  namespace?: string;
  source: string;
  extra?: Record<string, string>;
  /** A key several references can share, e.g. the message they were posted in (see `removeByRef`). */
  ref?: string;
}

/**
 * `duplicate`: the same bytes were already stored; `meta` was added to them as a reference unless one with the same
 * source was already there. Either way `record` is seen through the reference with `meta.source`.
 */
export type IndexResult = { status: 'indexed'; record: ImageRecord } | { status: 'duplicate'; record: ImageRecord };

export async function indexImage(ns: Namespace, pipeline: ImagePipeline, bytes: Uint8Array, meta: IndexMeta): Promise<IndexResult> {
  const hash = sha256(bytes);
  const addedAt = new Date().toISOString();
  const reference: ImageReference = { source: meta.source, addedAt, ...(meta.ref === undefined ? {} : { ref: meta.ref }), ...(meta.extra === undefined ? {} : { extra: meta.extra }) };
  // Known bytes get this post as a reference (one feature row per content, one reference per post).
  const asDuplicate = async (id: number | undefined): Promise<IndexResult | undefined> => {
    const known = id === undefined ? undefined : await ns.store.addReference(id, reference);
    const view = known?.record.refs.find((r) => r.source === meta.source);
    return known && view ? { status: 'duplicate', record: { ...throughReference(known.record, view), refs: known.record.refs } } : undefined;
  };
  const known = await ns.store.findBySha(hash);
  if (known !== undefined) {
    const duplicate = await ns.store.exclusive(() => asDuplicate(known));
    if (duplicate) return duplicate;
  }
  const image = await pipeline.process(bytes, ns.background, true);
  return ns.store.exclusive(async (): Promise<IndexResult> => {
    const duplicate = await asDuplicate(await ns.store.findBySha(hash));
    if (duplicate) return duplicate;
    const record = await ns.store.insert(
      { sha256: hash, source: meta.source, width: image.width, height: image.height, addedAt, extra: meta.extra, ref: meta.ref },
      image.features,
      image.thumbnail,
    );
    ns.addToIndex(record.id, image.features, posterOf(record));
    return { status: 'indexed', record };
  });
}
