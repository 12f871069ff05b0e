/**
 * npm run repost-eval -- <dataset folder or manifest.tsv> [--seed n] [--sample n] [--threshold t]
 * The near-duplicate threshold of repost notices, measured: edited copies (re-encoded, resized, cropped a little,
 * recoloured, captioned, and all of those at once) of a seeded sample of the set's images are scored against their
 * own original (a repost) and against every other image of the set (distinct images: never a repost, even the same
 * card drawn by another deck's artist). Prints the precision/recall curve by cosine threshold in two spaces: the raw
 * 1280-d MobileNetV2 features and the PCA-64 key a retrain fits on the collection.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadDataset } from '../src/eval/dataset.js';
import { extractWithCache } from '../src/eval/feature-cache.js';
import { REPOST_EDITS, repostCopy, type RepostEdit } from '../src/eval/repost-edits.js';
import { createFeatureExtractor, type FeatureExtractor } from '../src/ml/features.js';
import { preprocessImage } from '../src/ml/image.js';
import { thumbnailFromPixels } from '../src/ml/thumbnail.js';
import { matchImage, matchThumbnails, type MatchImage } from '../src/index/thumbnail-match.js';
import {
  REPOST_CANDIDATE_THRESHOLD,
  REPOST_CLOSE_MATCH,
  REPOST_CLOSE_THRESHOLD,
  REPOST_FIRST_STAGE,
  REPOST_MATCH_THRESHOLD,
  REPOST_SAME_COLOUR,
  REPOST_SAME_COLOUR_GREY_FLOOR,
  REPOST_SAME_COLOUR_MATCH,
  REPOST_SAME_COLOUR_NCC,
  REPOST_SAME_COLOUR_SMOOTH,
  REPOST_SAME_COLOUR_THRESHOLD,
  REPOST_SMOOTH_MATCH,
  repostMatches,
} from '../src/index/near-duplicates.js';
import { hammingDistance } from '../src/ml/transforms.js';
import { fitPcaKey } from '../src/ml/linear-key.js';
import { unitRows } from '../src/ml/vae-model.js';
import { mulberry32, seededShuffle } from '../src/util/random.js';
import { parseDatasetArgs } from './script-args.js';

const USAGE = 'usage: npm run repost-eval -- <dataset folder or manifest.tsv> [--seed n] [--sample n] [--threshold t]';
const TARGET_PRECISION = 0.99;
const TARGET_RECALL = 0.9;
/** Nearest neighbours in the key's index from which the engine re-scores candidates on raw features. */
const CANDIDATES = 64;
const BINS = 2000;
const IN_FLIGHT = 4;
/** Bump when repost-edits.ts changes what a copy is. */
const COPIES_VERSION = 1;
const TWIN_HASH_BITS = 6;
const TWIN_COSINE = 0.95;

/** Scores as a histogram over [-1, 1], so counts above any threshold are one cumulative sum. */
class Histogram {
  readonly counts = new Float64Array(BINS + 1);
  total = 0;
  add(score: number): void {
    this.counts[Math.max(0, Math.min(BINS, Math.floor(((score + 1) / 2) * BINS)))] += 1;
    this.total += 1;
  }
  atLeast(threshold: number): number {
    let sum = 0;
    for (let b = Math.ceil(((threshold + 1) / 2) * BINS); b <= BINS; b++) sum += this.counts[b];
    return sum;
  }
}

function dot(a: Float32Array, i: number, b: Float32Array, j: number, dim: number): number {
  let s = 0;
  for (let k = 0; k < dim; k++) s += a[i * dim + k] * b[j * dim + k];
  return s;
}

type Copy = { original: number; edit: RepostEdit; description: string };
type Measured = {
  positives: Histogram;
  negatives: Histogram;
  byEdit: Map<RepostEdit, Histogram>;
  /** Per original: its highest score against any distinct original (a fresh post that would get a notice). */
  freshMax: Float32Array;
  /** Copies whose original is among the CANDIDATES nearest in this space. */
  inCandidates: number;
  worstNegatives: Array<{ copy: number; other: number; score: number }>;
};

/** A similarity of an edited copy to an original, and of two originals. */
type Space = { copyScore(copy: number, original: number): number; pairScore(a: number, b: number): number };

/** Cosine similarity of unit rows. */
function cosineSpace(originals: Float32Array, copies: Float32Array, dim: number): Space {
  return { copyScore: (c, j) => dot(copies, c, originals, j, dim), pairScore: (a, b) => dot(originals, a, originals, b, dim) };
}

function measure(space: Space, n: number, copyInfo: Copy[], sameContent: Int32Array): Measured {
  const m: Measured = { positives: new Histogram(), negatives: new Histogram(), byEdit: new Map(), freshMax: new Float32Array(n).fill(-1), inCandidates: 0, worstNegatives: [] };
  for (const edit of REPOST_EDITS) m.byEdit.set(edit, new Histogram());
  const scores = new Float32Array(n);
  for (const [c, info] of copyInfo.entries()) {
    for (let j = 0; j < n; j++) scores[j] = space.copyScore(c, j);
    const own = scores[info.original];
    m.positives.add(own);
    m.byEdit.get(info.edit)!.add(own);
    let above = 0;
    for (let j = 0; j < n; j++) {
      if (j === info.original) continue;
      if (scores[j] > own) above += 1;
      // The same bytes under two names are one image, not a distinct one.
      if (sameContent[j] === sameContent[info.original]) continue;
      m.negatives.add(scores[j]);
      if (m.worstNegatives.length < 8 || scores[j] > m.worstNegatives[m.worstNegatives.length - 1].score) {
        m.worstNegatives.push({ copy: c, other: j, score: scores[j] });
        m.worstNegatives.sort((a, b) => b.score - a.score).length = Math.min(m.worstNegatives.length, 8);
      }
    }
    if (above < CANDIDATES) m.inCandidates += 1;
  }
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (sameContent[i] === sameContent[j]) continue;
      const s = space.pairScore(i, j);
      if (s > m.freshMax[i]) m.freshMax[i] = s;
      if (s > m.freshMax[j]) m.freshMax[j] = s;
    }
  }
  return m;
}

const at = (m: Measured, t: number) => {
  const tp = m.positives.atLeast(t);
  const fp = m.negatives.atLeast(t);
  return { precision: tp + fp === 0 ? 1 : tp / (tp + fp), recall: tp / m.positives.total, fp, fresh: m.freshMax.filter((s) => s >= t).length / m.freshMax.length };
};

const recallByEdit = (m: Measured, t: number) => REPOST_EDITS.map((e) => `${e} ${(m.byEdit.get(e)!.atLeast(t) / m.byEdit.get(e)!.total).toFixed(3)}`).join(', ');

/** The lowest threshold (0.005 steps) from which on precision stays at or above the target. */
function lowestSafe(m: Measured): number {
  let safe = 1;
  for (let t = 1; t >= 0.5 - 1e-9; t -= 0.005) {
    if (at(m, t).precision < TARGET_PRECISION) break;
    safe = t;
  }
  return Math.round(safe * 1000) / 1000;
}

/**
 * The features of the edited copies, kept beside the feature cache per seed and sample (edits are random, so they
 * are not entries of the ordinary cache).
 */
async function editedCopies(
  jobs: Array<{ original: number; edit: RepostEdit }>,
  paths: string[],
  seed: number,
  cacheDir: string,
  extractor: FeatureExtractor,
): Promise<{ copies: Float32Array; copyInfo: Copy[] }> {
  const stem = path.join(cacheDir, `repost-copies-v${COPIES_VERSION}-seed${seed}-${createHash('sha256').update(JSON.stringify([jobs, paths])).digest('hex').slice(0, 12)}`);
  const d = extractor.dim;
  try {
    const copyInfo = JSON.parse(await readFile(`${stem}.json`, 'utf8')) as Copy[];
    const bytes = await readFile(`${stem}.f32`);
    const copies = new Float32Array(bytes.byteLength / 4);
    new Uint8Array(copies.buffer).set(bytes);
    if (copies.length === jobs.length * d) return { copies, copyInfo };
  } catch {
    // Not measured yet with this seed and sample.
  }
  const copyInfo: Copy[] = [];
  const copies = new Float32Array(jobs.length * d);
  let next = 0;
  const work = async () => {
    for (let j = next++; j < jobs.length; j = next++) {
      const { original, edit } = jobs[j];
      // One generator per copy, so a copy's parameters do not depend on the order the workers finish in.
      const random = mulberry32(seed * 1_000_003 + j);
      const copy = await repostCopy(new Uint8Array(await readFile(paths[original])), edit, random);
      const { input } = await preprocessImage(copy.bytes, { fit: 'pad', background: 'white' });
      copies.set(await extractor.extract(input), j * d);
      copyInfo[j] = { original, edit, description: copy.description };
      if ((j + 1) % 300 === 0) console.error(`edited copies: ${j + 1}/${jobs.length}`);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, work));
  await writeFile(`${stem}.f32`, new Uint8Array(copies.buffer));
  await writeFile(`${stem}.json`, JSON.stringify(copyInfo));
  return { copies, copyInfo };
}

/**
 * Which images of the set are one picture under two names: identical files, or two files that both a perceptual
 * hash (dHash within TWIN_HASH_BITS) and the raw features (cosine ≥ TWIN_COSINE) call the same. Such a pair is a
 * repost by the issue's own definition (the sets hold a drawing re-saved, or recoloured, under a second name), so it
 * is neither a true nor a false notice and is left out; the script prints them for inspection.
 */
function samePictures(shas: string[], unit: Float32Array, dim: number, hash: (i: number) => [number, number]): { group: Int32Array; pairs: Array<[number, number]> } {
  const n = shas.length;
  const group = Int32Array.from({ length: n }, (_, i) => i);
  const find = (i: number): number => (group[i] === i ? i : (group[i] = find(group[i])));
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const same = shas[i] === shas[j] || (hammingDistance(hash(i), hash(j)) <= TWIN_HASH_BITS && dot(unit, i, unit, j, dim) >= TWIN_COSINE);
      if (!same) continue;
      pairs.push([i, j]);
      group[find(j)] = find(i);
    }
  }
  for (let i = 0; i < n; i++) group[i] = find(i);
  return { group, pairs };
}

async function main(): Promise<void> {
  const { dataset: location, seed, options } = parseDatasetArgs(USAGE, ['sample', 'threshold', 'dump']);
  const sampleSize = Number(options.sample ?? 300);
  if (!Number.isInteger(sampleSize) || sampleSize < 1) {
    console.error(USAGE);
    return process.exit(2);
  }
  const dataset = await loadDataset(location);
  const cacheDir = path.join(dataset.root, '.feature-cache');
  const extractor = await createFeatureExtractor();
  const extracted = await extractWithCache(dataset.images.map((i) => ({ path: i.path })), { extractor, fit: 'pad', background: 'white', cacheDir });
  const kept = dataset.images.map((_, i) => i).filter((i) => !extracted.failures.has(i));
  const d = extracted.dim;
  const n = kept.length;
  const raw = new Float32Array(n * d);
  kept.forEach((r, i) => raw.set(extracted.features.subarray(r * d, (r + 1) * d), i * d));
  const shas = await Promise.all(kept.map(async (r) => createHash('sha256').update(await readFile(dataset.images[r].path)).digest('hex')));
  const twins = samePictures(shas, unitRows(raw, n, d), d, (i) => [extracted.hashes[2 * kept[i]], extracted.hashes[2 * kept[i] + 1]]);
  const sameContent = twins.group;

  const picks = seededShuffle(Array.from({ length: n }, (_, i) => i), seed).slice(0, sampleSize);
  const jobs = picks.flatMap((original) => REPOST_EDITS.map((edit) => ({ original, edit })));
  const { copies, copyInfo } = await editedCopies(jobs, kept.map((r) => dataset.images[r].path), seed, cacheDir, extractor);
  await extractor.close();

  const pca = fitPcaKey(raw, n, d, { components: 64, shrinkage: null, seed });
  const l = pca.meta.latentDim;
  const rawSpace = cosineSpace(unitRows(raw, n, d), unitRows(copies, jobs.length, d), d);
  const spaces = [
    { name: `raw ${d}-d`, m: measure(rawSpace, n, copyInfo, sameContent) },
    { name: `PCA-${l} key`, m: measure(cosineSpace(unitRows(pca.encode(raw, n), n, l), unitRows(pca.encode(copies, jobs.length), jobs.length, l), l), n, copyInfo, sameContent) },
  ];

  const name = path.basename(dataset.root);
  console.log(`${name}: ${n} images, ${picks.length} sampled × ${REPOST_EDITS.length} edits = ${jobs.length} copies, seed ${seed}`);
  console.log(`negatives: every copy against every other image (${spaces[0].m.negatives.total} pairs), except ${twins.pairs.length} pairs of images that are one picture under two names:`);
  const rel = (i: number) => path.relative(dataset.root, dataset.images[kept[i]].path);
  for (const [i, j] of twins.pairs.slice(0, 12)) console.log(`    ${rel(i)} = ${rel(j)}`);
  console.log('');
  console.log(`| threshold | ${spaces.map((s) => `${s.name}: precision | recall | false links | fresh posts noticed`).join(' | ')} |`);
  console.log(`|---:|${spaces.map(() => '---:|---:|---:|---:').join('|')}|`);
  for (let t = 0.6; t <= 0.981; t += 0.02) {
    const cells = spaces.map(({ m }) => {
      const r = at(m, t);
      return `${r.precision.toFixed(4)} | ${r.recall.toFixed(3)} | ${r.fp} | ${(r.fresh * 100).toFixed(1)} %`;
    });
    console.log(`| ${t.toFixed(2)} | ${cells.join(' | ')} |`);
  }
  console.log('');
  for (const { name: space, m } of spaces) {
    const t = lowestSafe(m);
    const r = at(m, t);
    console.log(`${space}: lowest threshold with precision ≥ ${TARGET_PRECISION}: ${t.toFixed(3)} → recall ${r.recall.toFixed(3)}${r.recall >= TARGET_RECALL ? '' : ` (below ${TARGET_RECALL})`}, fresh posts noticed ${(r.fresh * 100).toFixed(1)} %`);
    console.log(`  recall by edit: ${recallByEdit(m, t)}`);
    console.log(`  original among the ${CANDIDATES} nearest in this space: ${((m.inCandidates / jobs.length) * 100).toFixed(1)} % of copies`);
    console.log(`  highest copy → distinct image scores:`);
    for (const w of m.worstNegatives.slice(0, 5)) {
      const c = copyInfo[w.copy];
      console.log(`    ${w.score.toFixed(3)}  ${c.edit} (${c.description}) of ${rel(c.original)} → ${rel(w.other)}`);
    }
  }
  await verificationStage({ dataset, kept, n, d, raw, copies, copyInfo, jobs, seed, cacheDir, sameContent, rel, name, dump: options.dump });

  const fixed = Number(options.threshold ?? NaN);
  if (Number.isFinite(fixed)) {
    for (const { name: space, m } of spaces) {
      const r = at(m, fixed);
      console.log(`at ${fixed} in ${space}: precision ${r.precision.toFixed(4)}, recall ${r.recall.toFixed(3)}, ${r.fp} false links, fresh posts noticed ${(r.fresh * 100).toFixed(1)} %`);
      console.log(`  recall by edit: ${recallByEdit(m, fixed)}`);
    }
  }
}

/** Raw cosine from which a pair is a candidate for the second stage at all (the loosest first-stage threshold shown). */
const STAGE1_MIN = Math.min(0.75, REPOST_FIRST_STAGE);
const STAGE1_THRESHOLDS = [0.75, 0.8, 0.85, 0.9, 0.95];

/**
 * match, smooth: the verdict's grey and smoothed scores (0 when matchVeto forbids the pair); grey, smoothGrey: the same,
 * veto or not; colour: the aligned colour difference.
 */
type Pair = { post: number; stored: number; raw: number; match: number; grey: number; smooth: number; smoothGrey: number; colour: number; veto?: string; ncc: number; minBlock: number; rows?: number[][] };

/**
 * The second stage, measured: every copy → original pair and copy → distinct image pair among the CANDIDATES
 * nearest by raw cosine and at or above STAGE1_MIN, and every pair of distinct set images at or above it (a fresh
 * post of either, the other stored), is matched on the two thumbnails the engine would have stored.
 */
const verdict = (m: ReturnType<typeof matchThumbnails>) => ({
  match: m.veto ? 0 : m.score,
  grey: m.score,
  smooth: m.veto ? 0 : m.smoothScore,
  smoothGrey: m.smoothScore,
  colour: m.colour,
  ...(m.veto ? { veto: m.veto } : {}),
});
const rowsOf = (m: ReturnType<typeof matchThumbnails>) => (m.rows.map((r) => [Math.round(r.min * 1000) / 1000, Math.round(r.mean * 1000) / 1000]));

async function verificationStage(args: {
  dataset: { images: Array<{ path: string }> };
  kept: number[];
  n: number;
  d: number;
  raw: Float32Array;
  copies: Float32Array;
  copyInfo: Copy[];
  jobs: Array<{ original: number; edit: RepostEdit }>;
  seed: number;
  cacheDir: string;
  sameContent: Int32Array;
  rel: (i: number) => string;
  name: string;
  dump?: string;
}): Promise<void> {
  const { kept, n, d, raw, copies, copyInfo, jobs, seed, cacheDir, sameContent } = args;
  const paths = kept.map((r) => args.dataset.images[r].path);
  const tag = createHash('sha256').update(JSON.stringify(paths)).digest('hex').slice(0, 12);
  const originals = await cachedThumbs(path.join(cacheDir, `repost-thumbs-v1-originals-${tag}`), n, async (i) => thumbOf(new Uint8Array(await readFile(paths[i]))));
  const copyTag = createHash('sha256').update(JSON.stringify([jobs, paths])).digest('hex').slice(0, 12);
  const copyThumbs = await cachedThumbs(path.join(cacheDir, `repost-thumbs-v${COPIES_VERSION}-seed${seed}-${copyTag}`), jobs.length, async (j) => {
    const random = mulberry32(seed * 1_000_003 + j);
    const copy = await repostCopy(new Uint8Array(await readFile(paths[jobs[j].original])), jobs[j].edit, random);
    return thumbOf(copy.bytes);
  });
  const decode = (t: Thumb) => matchImage(t.webp, t);
  const origImages: MatchImage[] = [];
  for (const t of originals) origImages.push(await decode(t));
  const unitOrig = unitRows(raw, n, d);
  const unitCopies = unitRows(copies, jobs.length, d);

  const started = performance.now();
  let matched = 0;
  const match = async (post: MatchImage, stored: MatchImage) => {
    matched += 1;
    return matchThumbnails(post, stored);
  };
  const copyPairs: Array<Pair & { positive: boolean }> = [];
  const scores = new Float32Array(n);
  for (let c = 0; c < jobs.length; c++) {
    for (let j = 0; j < n; j++) scores[j] = dot(unitCopies, c, unitOrig, j, d);
    const kth = Float32Array.from(scores).sort()[n - CANDIDATES];
    const post = await decode(copyThumbs[c]);
    const own = copyInfo[c].original;
    for (let j = 0; j < n; j++) {
      if (scores[j] < STAGE1_MIN || scores[j] < kth) continue;
      if (j !== own && sameContent[j] === sameContent[own]) continue;
      const m = await match(post, origImages[j]);
      copyPairs.push({ post: c, stored: j, raw: scores[j], ...verdict(m), ncc: m.ncc, minBlock: m.minBlock, positive: j === own, rows: rowsOf(m) });
    }
  }
  const freshPairs: Pair[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) scores[j] = dot(unitOrig, i, unitOrig, j, d);
    // The image itself is among the stored ones only as a twin would be: its own score is left out of the ranks.
    scores[i] = -1;
    const kth = Float32Array.from(scores).sort()[n - CANDIDATES];
    for (let j = 0; j < n; j++) {
      if (i === j || sameContent[i] === sameContent[j]) continue;
      const s = scores[j];
      if (s < STAGE1_MIN || s < kth) continue;
      const m = await match(origImages[i], origImages[j]);
      freshPairs.push({ post: i, stored: j, raw: s, ...verdict(m), ncc: m.ncc, minBlock: m.minBlock, rows: rowsOf(m) });
    }
  }
  const ms = performance.now() - started;
  console.log('');
  console.log(`second stage: ${matched} thumbnail matches in ${(ms / 1000).toFixed(1)} s (${(ms / matched).toFixed(2)} ms each, decoding the post's thumbnail included once per copy)`);
  if (args.dump) await writeFile(args.dump, JSON.stringify({ copyInfo, copyPairs, freshPairs, n }));

  for (const field of ['match', 'smooth', 'grey', 'ncc'] as const) {
    console.log('');
    console.log(`two stages, verification score "${field}": raw cosine ≥ t1 among the ${CANDIDATES} nearest, then ${field} ≥ t2 (the lowest t2, in 0.005 steps, from which precision stays ≥ ${TARGET_PRECISION})`);
    console.log('| t1 | t2 | precision | recall | false links | fresh posts noticed | recall by edit |');
    console.log('|---:|---:|---:|---:|---:|---:|:---|');
    for (const t1 of STAGE1_THRESHOLDS) {
      const result = (t2: number) => {
        let tp = 0;
        let fp = 0;
        const found = new Set<number>();
        for (const p of copyPairs) {
          if (p.raw < t1 || p[field] < t2) continue;
          if (p.positive) {
            tp += 1;
            found.add(p.post);
          } else fp += 1;
        }
        const noticed = new Set<number>();
        for (const p of freshPairs) if (p.raw >= t1 && p[field] >= t2) noticed.add(p.post);
        return { precision: tp + fp === 0 ? 1 : tp / (tp + fp), recall: tp / jobs.length, fp, fresh: noticed.size / n, found };
      };
      let t2 = 1;
      for (let t = 1; t >= -1e-9; t -= 0.005) {
        if (result(t).precision < TARGET_PRECISION) break;
        t2 = t;
      }
      const r = result(t2);
      const byEdit = REPOST_EDITS.map((e) => {
        const of = copyInfo.map((c, i) => ({ c, i })).filter(({ c }) => c.edit === e);
        return `${e} ${(of.filter(({ i }) => r.found.has(i)).length / of.length).toFixed(2)}`;
      }).join(', ');
      console.log(`| ${t1.toFixed(2)} | ${t2.toFixed(3)} | ${r.precision.toFixed(4)} | ${r.recall.toFixed(3)} | ${r.fp} | ${(r.fresh * 100).toFixed(1)} % | ${byEdit} |`);
    }
  }
  // The engine's setting (near-duplicates.ts), and what the vetoes cost and saved there.
  {
    // The engine's own decision, vetoes included (a vetoed pair scores 0 on both).
    const counts = (p: Pair) => repostMatches(p.raw, { score: p.match, smoothScore: p.smooth, colour: p.colour, ncc: p.ncc });
    const linked = copyPairs.filter(counts);
    const tp = linked.filter((p) => p.positive).length;
    const found = new Set(linked.filter((p) => p.positive).map((p) => p.post));
    const noticed = new Set(freshPairs.filter(counts).map((p) => p.post));
    const byEdit = REPOST_EDITS.map((e) => {
      const of = copyInfo.map((c, i) => ({ c, i })).filter(({ c }) => c.edit === e);
      return `${e} ${(of.filter(({ i }) => found.has(i)).length / of.length).toFixed(2)}`;
    }).join(', ');
    console.log('');
    console.log(
      `engine setting: raw ≥ ${REPOST_CANDIDATE_THRESHOLD} and (match ≥ ${REPOST_MATCH_THRESHOLD} or smoothed ≥ ${REPOST_SMOOTH_MATCH}), or raw ≥ ${REPOST_CLOSE_THRESHOLD} and either ≥ ${REPOST_CLOSE_MATCH}, ` +
        `or raw ≥ ${REPOST_SAME_COLOUR_THRESHOLD}, colour difference ≤ ${REPOST_SAME_COLOUR}, whole-picture ncc ≥ ${REPOST_SAME_COLOUR_NCC} and (match ≥ ${REPOST_SAME_COLOUR_MATCH} or smoothed ≥ ${REPOST_SAME_COLOUR_SMOOTH} with match ≥ ${REPOST_SAME_COLOUR_GREY_FLOOR}): precision ${(linked.length === 0 ? 1 : tp / linked.length).toFixed(4)}, recall ${(found.size / jobs.length).toFixed(3)}, ${linked.length - tp} false links, fresh posts noticed ${((noticed.size / n) * 100).toFixed(1)} %`,
    );
    console.log(`  recall by edit: ${byEdit}`);
    // Where the copies the setting misses are lost: below the first stage, to a veto, or to the match itself.
    const own = new Map(copyPairs.filter((p) => p.positive).map((p) => [p.post, p]));
    const lost = new Map<string, number>();
    for (const [c, info] of copyInfo.entries()) {
      if (found.has(c)) continue;
      const p = own.get(c);
      const why =
        p === undefined || p.raw < REPOST_FIRST_STAGE
          ? 'first stage'
          : p.veto && repostMatches(p.raw, { score: p.grey, smoothScore: p.smoothGrey, colour: p.colour, ncc: p.ncc })
            ? `veto ${p.veto}`
            : 'match';
      lost.set(`${info.edit} ${why}`, (lost.get(`${info.edit} ${why}`) ?? 0) + 1);
    }
    console.log(`  copies missed, by edit and stage: ${[...lost].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    const vetoed = copyPairs.filter((p) => p.veto && repostMatches(p.raw, { score: p.grey, smoothScore: p.smoothGrey, colour: p.colour, ncc: p.ncc }));
    for (const reason of ['flat', 'chroma', 'hue']) {
      const v = vetoed.filter((p) => p.veto === reason);
      console.log(`  vetoed "${reason}" with a grey match that counts: ${v.filter((p) => !p.positive).length} distinct pairs, ${v.filter((p) => p.positive).length} copy → own original`);
    }
  }
  const worst = copyPairs.filter((p) => !p.positive).sort((a, b) => b.match - a.match).slice(0, 8);
  console.log('highest verified copy → distinct image pairs (match, raw):');
  for (const p of worst) console.log(`    ${p.match.toFixed(3)} ${p.raw.toFixed(3)}  ${copyInfo[p.post].edit} (${copyInfo[p.post].description}) of ${args.rel(copyInfo[p.post].original)} → ${args.rel(p.stored)}`);
}

/** A stored thumbnail and the size of the image it was made from, as the engine keeps them. */
type Thumb = { webp: Buffer; width: number; height: number };

async function thumbOf(bytes: Uint8Array): Promise<Thumb> {
  const image = await preprocessImage(bytes, { fit: 'pad', background: 'white' });
  return { webp: await thumbnailFromPixels(image.pixels), width: image.width, height: image.height };
}

async function cachedThumbs(stem: string, count: number, make: (i: number) => Promise<Thumb>): Promise<Thumb[]> {
  try {
    const index = JSON.parse(await readFile(`${stem}.json`, 'utf8')) as Array<[number, number, number, number]>;
    const bytes = await readFile(`${stem}.bin`);
    if (index.length === count) return index.map(([offset, length, width, height]) => ({ webp: bytes.subarray(offset, offset + length), width, height }));
  } catch {
    // Not made yet.
  }
  const out: Thumb[] = [];
  let next = 0;
  const work = async () => {
    for (let i = next++; i < count; i = next++) {
      out[i] = await make(i);
      if ((i + 1) % 500 === 0) console.error(`thumbnails: ${i + 1}/${count}`);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, work));
  let offset = 0;
  const index = out.map((t) => {
    const entry = [offset, t.webp.length, t.width, t.height];
    offset += t.webp.length;
    return entry;
  });
  await writeFile(`${stem}.bin`, Buffer.concat(out.map((t) => t.webp)));
  await writeFile(`${stem}.json`, JSON.stringify(index));
  return out;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exitCode = 1;
});
