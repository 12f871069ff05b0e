/**
 * What the store keeps per image and how it reads its stored form: records, their references (one per post of the
 * same bytes), and the views of a record through one reference. Pure data and functions; store.ts does the I/O.
 */
import { decodeFloat16 } from '../util/float16.js';

/**
 * One place an image was posted (a file for the CLI, one attachment of one message for the bot). Identical bytes
 * posted twice are one image with two references, so each post can be found, shown and removed on its own.
 */
export interface ImageReference {
  /** Where the image came from: a file path for the CLI, a message/attachment reference for the bot. Identifies the reference. */
  source: string;
  /** A caller key several references can share (the bot: the message id), to find and remove them together. */
  ref?: string;
  /** Caller-defined fields (for the bot: channel, author, message ids); strings only so they stay portable. */
  extra?: Record<string, string>;
  addedAt: string;
}

/** What is kept per image: enough to rebuild any index or retrain without the original bytes. */
export interface ImageRecord {
  id: number;
  sha256: string;
  /** The first reference's source, or the one a query's hit was found through (see `throughReference`). */
  source: string;
  width: number;
  height: number;
  addedAt: string;
  /** The `extra` of the same reference as `source`. */
  extra?: Record<string, string>;
  /** The `ref` of the same reference as `source`. */
  ref?: string;
  /** Every reference of the image, oldest first; never empty for a stored image (one only, in a hit's view). */
  refs: ImageReference[];
}

/** The record as seen through one of its references: `source`, `extra` and `ref` are that reference's. */
export function throughReference(record: ImageRecord, reference: ImageReference): ImageRecord {
  const { extra: _extra, ref: _ref, ...rest } = record;
  return {
    ...rest,
    source: reference.source,
    ...(reference.extra === undefined ? {} : { extra: reference.extra }),
    ...(reference.ref === undefined ? {} : { ref: reference.ref }),
    refs: [reference],
  };
}

/** The record seen through each of its references in turn. */
export function referenceViews(record: ImageRecord): ImageRecord[] {
  return record.refs.map((reference) => throughReference(record, reference));
}

/** What `removeReferences` did to one image. */
export interface ReferenceRemoval {
  /** The image as it was, seen through each removed reference. */
  removed: ImageRecord[];
  /** True when the last reference went, and the image with it. */
  imageDeleted: boolean;
}

export interface StoredImage extends ImageRecord {
  features: Float32Array;
}

/**
 * A record as stored: a row of the `images` table (image-tables.ts), its references compact (`r`, see
 * `CompactReference`). Records kept in keyv before that table (`img:<id>`) may hold them as objects (`refs`), and
 * those written before references existed hold one post's `source`, `extra` and `ref` at the top level; opening
 * the store rewrites them in the compact form (store-compaction.ts) and moves them to the table (record-migration.ts).
 */
export interface RecordValue {
  id: number;
  sha256: string;
  width: number;
  height: number;
  addedAt: string;
  refs?: ImageReference[];
  source?: string;
  extra?: Record<string, string>;
  ref?: string;
  /** The references in the compact form (`compactReference`): what every record is written with now. */
  r?: Array<CompactReference | ImageReference>;
  /**
   * base64 of the raw features as float16, in records written before features moved to the `features` table
   * (feature-blobs.ts). Opening the store moves them there (feature-migration.ts) before anything else reads them.
   */
  f16?: string;
}

/**
 * A reference as stored: `[source, addedAt, ref, extra]`, where an `addedAt` equal to the record's is 0, and `ref`
 * or an `extra` value equal to a segment of `source` (split at '/' and ':') is that segment's number. The bot's
 * source `discord:<guild>/<channel>/<message>/<key>` holds four of the ids its `extra` repeats and its `ref`, so a
 * reference takes ~150 B less; every value comes back exactly, because only strings are replaced, by numbers.
 * `ref` is null when absent; `extra` is left off when absent.
 */
export type CompactReference = [source: string, addedAt: string | 0, ref: string | number | null, extra?: Record<string, string | number>];

function segmentsOf(source: string): string[] {
  return source.split(/[/:]/);
}

/**
 * The reference in the compact form, or as it is when a field is not what the form can hold exactly (a value that
 * is not a string, from some older writer): that one is stored whole.
 */
export function compactReference(reference: ImageReference, recordAddedAt: string): CompactReference | ImageReference {
  const { source, addedAt, ref, extra } = reference;
  const strings = [source, addedAt, ...(ref === undefined ? [] : [ref]), ...Object.values(extra ?? {})];
  if (strings.some((s) => typeof s !== 'string') || (extra !== undefined && (typeof extra !== 'object' || extra === null || Array.isArray(extra)))) return reference;
  const segments = segmentsOf(source);
  const short = (value: string): string | number => {
    const at = segments.indexOf(value);
    return at < 0 ? value : at;
  };
  const out: CompactReference = [source, addedAt === recordAddedAt ? 0 : addedAt, ref === undefined ? null : short(ref)];
  if (extra !== undefined) out.push(Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, short(v)])));
  return out;
}

function expandReference(stored: CompactReference | ImageReference, recordAddedAt: string): ImageReference {
  if (!Array.isArray(stored)) return stored;
  const [source, addedAt, ref, extra] = stored;
  const segments = segmentsOf(source);
  const long = (value: string | number): string => (typeof value === 'number' ? segments[value] : value);
  return {
    source,
    addedAt: addedAt === 0 ? recordAddedAt : addedAt,
    ...(ref === null ? {} : { ref: long(ref) }),
    ...(extra === undefined ? {} : { extra: Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, long(v)])) }),
  };
}

/** A stored value's references: from `r`, from `refs`, or the one reference a record written before them describes. */
export function referencesOf(value: RecordValue): ImageReference[] {
  if (value.r) return value.r.map((stored) => expandReference(stored, value.addedAt));
  if (value.refs) return value.refs;
  const { source = '', ref, extra, addedAt } = value;
  return [{ source, addedAt, ...(ref === undefined ? {} : { ref }), ...(extra === undefined ? {} : { extra }) }];
}

/** The value in the current (compact) form, with these references. */
export function upgraded(value: RecordValue, refs: ImageReference[]): RecordValue {
  const { id, sha256, width, height, addedAt, f16 } = value;
  return { id, sha256, width, height, addedAt, r: refs.map((reference) => compactReference(reference, addedAt)), ...(f16 === undefined ? {} : { f16 }) };
}

export function withoutFeatures(value: RecordValue): ImageRecord {
  const refs = referencesOf(value);
  const { id, sha256, width, height, addedAt } = value;
  return { ...throughReference({ id, sha256, width, height, addedAt, source: '', refs }, refs[0]), refs };
}

/** The record with its features (the float16 bytes of the `features` table; none: an empty array). */
export function toStored(value: RecordValue, f16: Buffer | undefined): StoredImage {
  return { ...withoutFeatures(value), features: f16 ? decodeFloat16(f16) : new Float32Array(0) };
}
