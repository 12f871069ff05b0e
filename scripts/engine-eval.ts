/**
 * npm run engine-eval -- <dataset folder or manifest.tsv> [--seed n] [--data-dir dir]
 * Relevance as a community gets it, through the engine itself: index every image into a fresh namespace, query
 * every stored image (k = 20, itself excluded), retrain as an admin would (the quality gate chooses the key), and
 * query again. Prints P@20, mAP@20 and coarse P@20 before and after, with the gate's reason.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadDataset } from '../src/eval/dataset.js';
import { labelIds, scoreNeighbours } from '../src/eval/metrics.js';
import { createEngine, type Engine } from '../src/index/engine.js';
import { parseDatasetArgs } from './script-args.js';

const USAGE = 'usage: npm run engine-eval -- <dataset folder or manifest.tsv> [--seed n] [--data-dir dir]';
const K = 20;

async function scoreAll(engine: Engine, ids: number[], row: Map<number, number>, labels: Int32Array, coarse: Int32Array) {
  const neighbours = new Int32Array(ids.length * K);
  for (const [i, id] of ids.entries()) {
    const { hits } = await engine.query({ id }, { k: K });
    for (let r = 0; r < K; r++) neighbours[i * K + r] = hits[r] ? row.get(hits[r].record.id)! : -1;
  }
  // Rows of the evaluated images in `ids` order; -1 (fewer than k hits) matches no label.
  const l = Int32Array.from([...labels, -1]);
  const c = Int32Array.from([...coarse, -2]);
  for (let j = 0; j < neighbours.length; j++) if (neighbours[j] < 0) neighbours[j] = labels.length;
  return scoreNeighbours(neighbours, ids.length, K, l, c);
}

async function main(): Promise<void> {
  const { dataset: location, seed, options } = parseDatasetArgs(USAGE, ['data-dir']);
  const dataset = await loadDataset(location);
  const dataDir = options['data-dir'] ?? (await mkdtemp(path.join(tmpdir(), 'engine-eval-')));
  const engine = createEngine({ dataDir, retrainPolicy: false, autoRetrain: false, vaeHyper: { seed } });
  try {
    const ids: number[] = [];
    const labelOf: string[] = [];
    const coarseOf: string[] = [];
    let failed = 0;
    for (const [i, image] of dataset.images.entries()) {
      try {
        const result = await engine.index(new Uint8Array(await readFile(image.path)), { source: image.path });
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
    console.log(`${path.basename(dataset.root)}: ${ids.length} images indexed (${failed} refused), seed ${seed}`);
    console.log(`cold start (${(await engine.stats()).key}): ${fmt(before)}`);
    const started = Date.now();
    const summary = await engine.retrain();
    console.log(`retrain (${((Date.now() - started) / 1000).toFixed(0)} s): ${summary.swapped ? `switched to ${summary.key}` : `kept ${summary.key}`}: ${summary.gate.reason}`);
    const after = await scoreAll(engine, ids, row, labels, coarse);
    console.log(`after retrain (${summary.key}): ${fmt(after)}`);
    console.log(`change: P@20 ${(after.precision - before.precision).toFixed(3)}, mAP@20 ${(after.map - before.map).toFixed(3)}, coarse ${(after.coarsePrecision - before.coarsePrecision).toFixed(3)}`);
  } finally {
    await engine.close();
    if (!options['data-dir']) await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
