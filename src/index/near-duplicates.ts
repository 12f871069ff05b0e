import { MODEL_PREPROCESSING } from '../ml/onnx-model.js';
import type { Namespace } from './namespace.js';
import { referenceViews, type ImageRecord } from './store.js';
import { matchImage, matchThumbnails, matchVeto, type MatchImage } from './thumbnail-match.js';

/**
 * Cosine similarity of raw MobileNetV2 features from which two images count as the same picture when there are no
 * thumbnails to verify on (an engine run with thumbnails off, or images stored without one): the lowest threshold
 * that kept 99 % of the links true reposts on both development sets and two seeds (docs/relevance.md, "Repost
 * notices"). It finds only the lighter edits; identical files always count.
 */
export const REPOST_THRESHOLD = 0.99;
/**
 * With thumbnails the decision has two stages (docs/relevance.md, "Repost notices"): raw cosine at least
 * REPOST_CANDIDATE_THRESHOLD picks candidates, and the two thumbnails, aligned and compared block by block
 * (thumbnail-match.ts), must score at least REPOST_MATCH_THRESHOLD on the grey levels or REPOST_SMOOTH_MATCH on the
 * smoothed ones, unless matchVeto forbids the pair (near-blank pictures, colours no recolour explains), which grey
 * cannot tell apart. The grey score keeps captions (sharp text on a band), the smoothed one crops and resizes (whose
 * thin lines land between pixels of the other thumbnail). Chosen on seed 1 of both development sets with precision
 * ≥ 0.993 there, a margin: the best setting at 0.99 on seed 1 fell to 0.987 on clip art's seed 2. The false links
 * this tier lets through are one icon in two colours less than 60° of hue apart, as a recolour makes; they cap its
 * thresholds, and the same-colour tier below is what finds most crops and memes.
 */
export const REPOST_CANDIDATE_THRESHOLD = 0.88;
export const REPOST_MATCH_THRESHOLD = 0.97;
export const REPOST_SMOOTH_MATCH = 0.99;
/**
 * A candidate that raw features already call very close (REPOST_CLOSE_THRESHOLD) needs only a looser match
 * (REPOST_CLOSE_MATCH, on either score), which lets crops and shrunk memes through that the block-wise match scores a
 * little low, while a sibling drawing still fails it or a veto.
 */
export const REPOST_CLOSE_THRESHOLD = 0.95;
export const REPOST_CLOSE_MATCH = 0.95;
/**
 * A candidate whose aligned thumbnail has the same colours in the same places (mean a*b* difference at most
 * REPOST_SAME_COLOUR, thumbnail-match.ts `colour`) counts from a lower raw cosine and a looser match: what caps the
 * other tiers is one icon drawn in several colours, which grey cannot tell apart and colour can, while a crop, a
 * caption or a shrunk meme keeps every colour where it was (a recolour does not, and is left to the other tiers). The
 * looser match still needs the whole aligned picture to correlate (REPOST_SAME_COLOUR_NCC), and the smoothed score
 * a grey floor (REPOST_SAME_COLOUR_GREY_FLOOR): blurred, another arrow or another candy of the same colours can
 * score as high as a crop. Chosen on seed 1 of both sets, the whole-picture floor after seed 2 (docs/relevance.md).
 */
export const REPOST_SAME_COLOUR = 8;
export const REPOST_SAME_COLOUR_THRESHOLD = 0.8;
export const REPOST_SAME_COLOUR_NCC = 0.93;
export const REPOST_SAME_COLOUR_MATCH = 0.93;
export const REPOST_SAME_COLOUR_SMOOTH = 0.96;
export const REPOST_SAME_COLOUR_GREY_FLOOR = 0.8;
/** The raw cosine from which a candidate's thumbnail is read and matched: the lowest of the tiers' bars. */
export const REPOST_FIRST_STAGE = Math.min(REPOST_CANDIDATE_THRESHOLD, REPOST_CLOSE_THRESHOLD, REPOST_SAME_COLOUR_THRESHOLD);

/** What repostMatches reads of a thumbnail match (thumbnail-match.ts ThumbnailMatch). */
export type MatchScores = { score: number; smoothScore: number; colour: number; ncc: number };

/** Whether a candidate at raw cosine `raw` whose thumbnail matched as `match` (vetoes aside) counts as the same picture. */
export function repostMatches(raw: number, match: MatchScores): boolean {
  if (raw >= REPOST_CLOSE_THRESHOLD && Math.max(match.score, match.smoothScore) >= REPOST_CLOSE_MATCH) return true;
  if (raw >= REPOST_CANDIDATE_THRESHOLD && (match.score >= REPOST_MATCH_THRESHOLD || match.smoothScore >= REPOST_SMOOTH_MATCH)) return true;
  return (
    raw >= REPOST_SAME_COLOUR_THRESHOLD &&
    match.colour <= REPOST_SAME_COLOUR &&
    match.ncc >= REPOST_SAME_COLOUR_NCC &&
    (match.score >= REPOST_SAME_COLOUR_MATCH || (match.smoothScore >= REPOST_SAME_COLOUR_SMOOTH && match.score >= REPOST_SAME_COLOUR_GREY_FLOOR))
  );
}
/**
 * Candidates read from the index before they are scored on raw features: under a retrained key the original of
 * every edited copy in the measurement was among its 64 nearest (docs/relevance.md).
 */
const CANDIDATES = 64;

/** The input's thumbnail (as the engine stores them) and the decoded image's size, for the second stage. */
export interface InputThumbnail {
  bytes: Uint8Array;
  width: number;
  height: number;
}

export interface NearDuplicate {
  /** The image seen through one of its posts (references); an image posted several times gives several. */
  record: ImageRecord;
  /** Cosine similarity of raw features (1 for identical bytes). */
  score: number;
  /**
   * When the second stage decided (thumbnail-match.ts): the thumbnails' match scores, grey and smoothed, their colour
   * difference and their whole-picture correlation.
   */
  match?: number;
  smoothMatch?: number;
  colour?: number;
  ncc?: number;
}

/** Cosine similarity; 0 when either vector is all zeros (a failed extraction). */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/**
 * The posts of stored images that show the same picture as `features` (and `thumbnail`), most similar first (posts of
 * one image oldest first), each accepted by `filter`, at most `limit`. With the input's thumbnail, a candidate at
 * raw cosine ≥ REPOST_FIRST_STAGE counts when its stored thumbnail matches (repostMatches) and no veto forbids it; a
 * candidate without a stored thumbnail, or any candidate when the input has none, counts from raw cosine
 * `threshold`. The image `self` (the input when it is stored) is included: its other posts are identical copies.
 */
export async function findNearDuplicates(
  ns: Namespace,
  features: Float32Array,
  options: {
    threshold: number;
    limit: number;
    self?: number;
    poster?: string;
    filter?: (view: ImageRecord) => boolean | Promise<boolean>;
    thumbnail?: InputThumbnail;
  },
): Promise<NearDuplicate[]> {
  const loosest = options.thumbnail ? Math.min(options.threshold, REPOST_FIRST_STAGE) : options.threshold;
  const candidates: Array<{ id: number; score: number }> = [];
  const space = ns.current();
  for (const neighbour of space.search(space.key(features, options.poster), CANDIDATES)) {
    if (neighbour.id === options.self) continue;
    // Under the raw key the index's score is already the raw cosine; under a retrained one, score the stored features.
    let score = neighbour.score;
    if (ns.key.kind !== 'raw' || ns.key.style !== undefined) {
      const stored = await ns.store.get(neighbour.id);
      if (!stored) continue;
      score = cosine(features, stored.features);
    }
    if (score >= loosest) candidates.push({ id: neighbour.id, score });
  }
  const ids = candidates.map((c) => c.id);
  if (options.self !== undefined) ids.push(options.self);
  const records = await ns.store.getRecords(ids);

  const scored: Array<{ id: number; score: number; match?: number; smoothMatch?: number; colour?: number; ncc?: number }> = [];
  if (options.self !== undefined) scored.push({ id: options.self, score: 1 });
  let input: MatchImage | undefined;
  // The letterbox and what lies beyond a frame are the namespace's background, in grey.
  const [r, g, b] = MODEL_PREPROCESSING.backgrounds[ns.background];
  const pad = 0.299 * r + 0.587 * g + 0.114 * b;
  for (const candidate of candidates) {
    const record = records.get(candidate.id);
    const stored = options.thumbnail && record && candidate.score >= REPOST_FIRST_STAGE ? await ns.store.getThumbnail(candidate.id) : undefined;
    if (!options.thumbnail || !record || !stored) {
      if (candidate.score >= options.threshold) scored.push(candidate);
      continue;
    }
    input ??= await matchImage(options.thumbnail.bytes, options.thumbnail, pad);
    const other = await matchImage(stored, record, pad);
    // Near-blank pictures, and one drawing in colours no recolour explains, are not one picture whatever the grey says.
    if (matchVeto(input, other)) continue;
    const match = matchThumbnails(input, other);
    if (repostMatches(candidate.score, match)) scored.push({ ...candidate, match: match.score, smoothMatch: match.smoothScore, colour: match.colour, ncc: match.ncc });
  }
  scored.sort((a, b) => b.score - a.score);
  const out: NearDuplicate[] = [];
  for (const { id, score, match, smoothMatch, colour, ncc } of scored) {
    const record = records.get(id);
    if (!record) continue;
    for (const view of referenceViews(record)) {
      if (options.filter && !(await options.filter(view))) continue;
      out.push({ record: view, score: Math.min(1, score), ...(match === undefined ? {} : { match, smoothMatch, colour, ncc }) });
      if (out.length >= options.limit) return out;
    }
  }
  return out;
}
