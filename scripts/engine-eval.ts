/**
 * npm run engine-eval -- <dataset folder or manifest.tsv> [--seed n] [--data-dir dir] [--posters scheme] [--max-answers n] [--draws n]
 * Relevance as a community gets it, through the engine itself: index every image into a fresh namespace (posted by
 * the simulated posters of `--posters`, src/eval/posters.ts; default none), query every stored image (k = 20,
 * itself excluded), retrain as an admin would (the quality gate chooses the key), and query again. When the
 * retrain started a style trial, simulated askers (src/eval/simulated-askers.ts) judge answers until it is decided
 * (at most --max-answers, default 400), and every image is queried once more. Prints P@20, mAP@20 and coarse
 * P@20 at each step, with the gate's reason and the trial's decision. With --draws n, n draws of askers (each its
 * own seed) decide the same trial from a copy of the namespace as the retrain left it, and their decisions are counted.
 */
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadDataset } from '../src/eval/dataset.js';
import { labelIds, scoreNeighbours } from '../src/eval/metrics.js';
import { assignPosters, POSTER_SCHEMES, type PosterScheme } from '../src/eval/posters.js';
import { askUntilDecided } from '../src/eval/simulated-askers.js';
import { createEngine, type Engine, type QueryOptions } from '../src/index/engine.js';
import { mulberry32 } from '../src/util/random.js';
import { parseDatasetArgs } from './script-args.js';

const USAGE = `usage: npm run engine-eval -- <dataset folder or manifest.tsv> [--seed n] [--data-dir dir] [--posters ${POSTER_SCHEMES.join('|')}] [--max-answers n] [--draws n]`;
const K = 20;

/** `keys`: which key answers while a style trial runs (QueryOptions.keys); the current key's alone by default. */
async function scoreAll(engine: Engine, ids: number[], row: Map<number, number>, labels: Int32Array, coarse: Int32Array, keys: QueryOptions['keys'] = 'current') {
  const neighbours = new Int32Array(ids.length * K);
  const random = mulberry32(7);
  for (const [i, id] of ids.entries()) {
    const { hits } = await engine.query({ id }, { k: K, keys, random });
    for (let r = 0; r < K; r++) neighbours[i * K + r] = hits[r] ? row.get(hits[r].record.id)! : -1;
  }
  // Rows of the evaluated images in `ids` order; -1 (fewer than k hits) matches no label.
  const l = Int32Array.from([...labels, -1]);
  const c = Int32Array.from([...coarse, -2]);
  for (let j = 0; j < neighbours.length; j++) if (neighbours[j] < 0) neighbours[j] = labels.length;
  return scoreNeighbours(neighbours, ids.length, K, l, c);
}

async function main(): Promise<void> {
  const { dataset: location, seed, options } = parseDatasetArgs(USAGE, ['data-dir', 'posters', 'max-answers', 'draws']);
  const scheme = (options.posters ?? 'none') as PosterScheme;
  const maxAnswers = Number(options['max-answers'] ?? 400);
  const draws = Number(options.draws ?? 1);
  if (!POSTER_SCHEMES.includes(scheme) || !Number.isInteger(maxAnswers) || maxAnswers < 0 || !Number.isInteger(draws) || draws < 1) {
    console.error(USAGE);
    process.exit(2);
  }
  const dataset = await loadDataset(location);
  const posters = assignPosters(dataset.images, dataset.root, scheme, seed);
  const dataDir = options['data-dir'] ?? (await mkdtemp(path.join(tmpdir(), 'engine-eval-')));
  const open = (dir: string) => createEngine({ dataDir: dir, retrainPolicy: false, autoRetrain: false, vaeHyper: { seed } });
  let engine = open(dataDir);
  try {
    const ids: number[] = [];
    const labelOf: string[] = [];
    const coarseOf: string[] = [];
    let failed = 0;
    for (const [i, image] of dataset.images.entries()) {
      try {
        const poster = posters[i];
        const extra = poster === undefined ? undefined : { authorId: poster };
        const result = await engine.index(new Uint8Array(await readFile(image.path)), { source: image.path, ...(extra ? { extra } : {}) });
        if (result.status === 'indexed') {
          ids.push(result.record.id);
          labelOf.push(image.label);
          coarseOf.push(image.coarse);
        }
      } catch {
        failed++;
      }
      if ((i + 1) % 250 === 0) console.error(`indexed ${i + 1}/${dataset.images.length}`);
    }
    const row = new Map(ids.map((id, r) => [id, r]));
    const labels = labelIds(labelOf);
    const coarse = labelIds(coarseOf);
    const fmt = (s: { precision: number; map: number; coarsePrecision: number }) =>
      `P@20 ${s.precision.toFixed(3)}, mAP@20 ${s.map.toFixed(3)}, coarse P@20 ${s.coarsePrecision.toFixed(3)}`;
    const before = await scoreAll(engine, ids, row, labels, coarse);
    console.log(`${path.basename(dataset.root)}: ${ids.length} images indexed (${failed} refused), seed ${seed}, posters ${scheme}`);
    console.log(`cold start (${(await engine.stats()).key}): ${fmt(before)}`);
    const started = Date.now();
    const summary = await engine.retrain();
    console.log(`retrain (${((Date.now() - started) / 1000).toFixed(0)} s): ${summary.swapped ? `switched to ${summary.key}` : `kept ${summary.key}`}: ${summary.gate.reason}`);
    const after = await scoreAll(engine, ids, row, labels, coarse);
    console.log(`after retrain (${summary.key}): ${fmt(after)}`);
    console.log(`change: P@20 ${(after.precision - before.precision).toFixed(3)}, mAP@20 ${(after.map - before.map).toFixed(3)}, coarse ${(after.coarsePrecision - before.coarsePrecision).toFixed(3)}`);
    const trial = (await engine.stats()).trial;
    if (!trial) return;
    const candidate = await scoreAll(engine, ids, row, labels, coarse, 'candidate');
    console.log(`the style key alone (${trial.candidate}): ${fmt(candidate)} (true change P@20 ${(candidate.precision - after.precision).toFixed(3)})`);
    console.log(`during the trial (answers interleaved): ${fmt(await scoreAll(engine, ids, row, labels, coarse, 'interleaved'))}`);
    // Each draw of askers (their own seed) decides the same trial from the same start.
    await engine.close();
    const start = `${dataDir}-trial-start`;
    await cp(dataDir, start, { recursive: true });
    const decisions: string[] = [];
    for (let draw = 0; draw < draws; draw++) {
      if (draw > 0) {
        await engine.close();
        await rm(dataDir, { recursive: true, force: true });
        await cp(start, dataDir, { recursive: true });
      }
      engine = open(dataDir);
      const asked = await askUntilDecided(engine, ids, (id) => labelOf[row.get(id)!], { seed: seed * 1000 + draw, k: K, maxAnswers });
      decisions.push(`${asked.decision} (${asked.answers})`);
      if (draw > 0) continue;
      const final = await scoreAll(engine, ids, row, labels, coarse);
      const key = (await engine.stats()).key;
      console.log(`style trial: ${asked.decision} after ${asked.answers} answers; now ${key}: ${fmt(final)}`);
      console.log(`change over the retrain: P@20 ${(final.precision - after.precision).toFixed(3)}, mAP@20 ${(final.map - after.map).toFixed(3)}, coarse ${(final.coarsePrecision - after.coarsePrecision).toFixed(3)}`);
    }
    const adopted = decisions.filter((d) => d.startsWith('adopt')).length;
    if (draws > 1) console.log(`${draws} draws of askers: adopted ${adopted}, refused ${decisions.filter((d) => d.startsWith('refuse')).length}: ${decisions.join(', ')}`);
    await rm(start, { recursive: true, force: true });
  } finally {
    await engine.close();
    if (!options['data-dir']) await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
