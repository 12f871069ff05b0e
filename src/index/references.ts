import type { Namespace } from './namespace.js';
import { referenceViews, type ImageRecord, type ImageReference } from './store.js';

/** A removed reference, seen as the image through it; `imageRemoved` when it was the image's last one. */
export type RemovedReference = ImageRecord & { imageRemoved: boolean };

/**
 * Removes, image by image, the references each selector picks (one transaction per image, under the store's write
 * lock); an image whose last reference goes leaves the store and the index.
 */
export async function removeReferences(ns: Namespace, selections: Map<number, (reference: ImageReference) => boolean>): Promise<RemovedReference[]> {
  return ns.store.exclusive(async () => {
    const out: RemovedReference[] = [];
    for (const [id, select] of selections) {
      const { removed, imageDeleted } = await ns.store.removeReferences(id, select);
      if (imageDeleted) ns.removeFromIndex(id);
      out.push(...removed.map((view) => ({ ...view, imageRemoved: imageDeleted })));
    }
    return out;
  });
}

/** The references of `record` the predicate picks, as a selector over references (matched by source). */
export function selectViews(record: ImageRecord, predicate: (view: ImageRecord) => boolean): ((reference: ImageReference) => boolean) | undefined {
  const sources = new Set(referenceViews(record).filter(predicate).map((view) => view.source));
  return sources.size === 0 ? undefined : (reference) => sources.has(reference.source);
}

/** The first view of `record` the filter accepts: what a hit is shown through. */
export async function firstAcceptedView(record: ImageRecord, filter: (view: ImageRecord) => boolean | Promise<boolean>): Promise<ImageRecord | undefined> {
  for (const view of referenceViews(record)) if (await filter(view)) return view;
  return undefined;
}
