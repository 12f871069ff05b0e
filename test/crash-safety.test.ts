import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { createEngine, namespaceDir } from '../src/index/engine.js';
import { Namespace } from '../src/index/namespace.js';
import { VectorIndex, indexFiles } from '../src/index/vector-index.js';
import { sha256 } from '../src/util/atomic-file.js';
import { crc32 } from '../src/util/crc32.js';
import { mulberry32 } from '../src/util/random.js';
import { runBackfillScenario } from '../harness/crash/backfill-scenario.js';
import { recordingLogger } from '../harness/crash/restart-check.js';
import { runIngestScenario, runRetrainScenario, TINY_VAE } from '../harness/crash/scenarios.js';
import { tempDir } from './helpers/temp-dir.js';

const DIM = 1280;

function randomFeatures(random: () => number): Float32Array {
  return Float32Array.from({ length: DIM }, () => random());
}

async function addImage(ns: Namespace, random: () => number, n: number): Promise<void> {
  const features = randomFeatures(random);
  await ns.store.exclusive(async () => {
    const record = await ns.store.insert({ sha256: sha256(Buffer.from(`image ${n}`)), source: `${n}`, width: 1, height: 1, addedAt: '' }, features);
    ns.addToIndex(record.id, features, undefined);
  });
}

test('crash safety, CI size: ingestion, retrain and backfill killed at seeded random moments', async (t) => {
  const workDir = await tempDir('relevant-crash-');
  const options = { workDir, kills: 5, seed: 6, images: 400, retrainImages: 130, backfillMessages: 150 };

  await t.test('ingestion: every acknowledged image survives, store and index agree, reconciliation reports', async () => {
    const report = await runIngestScenario(options);
    assert.deepEqual(report.failures, []);
    assert.equal(report.kills, options.kills);
    assert.ok(report.figures.acknowledged > 0, 'some images were acknowledged before the kills');
  });

  await t.test('retrain: the previous or the new key is active, complete, and answers', async () => {
    const report = await runRetrainScenario(options);
    assert.deepEqual(report.failures, []);
    assert.equal(report.kills, options.kills);
  });

  await t.test('backfill: the bot killed mid-history resumes from its cursor; every image stored once, the cursor never ahead of them', async () => {
    const report = await runBackfillScenario(options);
    assert.deepEqual(report.failures, []);
    assert.equal(report.kills, options.kills);
    assert.ok(report.figures.backfills >= 1 && report.figures.duplicatesStored === 0);
  });

  await t.test('files killed writes and switches leave are removed: temporaries at start-up, candidates at the next switch', async () => {
    const dataDir = join(workDir, 'retrain-data');
    const dir = namespaceDir(dataDir, 'local');
    // PID 2^22 + 1 is above Linux's pid_max ceiling, so no running process owns these.
    const stale = ['index-raw.hnsw.tmp-4194305-1', 'index-vae-x.json.tmp-4194305-2'];
    for (const name of stale) await writeFile(join(dir, name), 'partial');
    await mkdir(join(dir, 'vae', 'candidate.tmp-4194305-ab'), { recursive: true });
    await writeFile(join(dir, 'index-vae-killed-candidate.hnsw'), 'complete but never switched to');
    await writeFile(join(dir, 'index-vae-killed-candidate.json'), '{}');

    const logger = recordingLogger();
    const engine = createEngine({ dataDir, logger, vaeHyper: TINY_VAE });
    try {
      await engine.stats();
      const names = await readdir(dir);
      for (const name of stale) assert.ok(!names.includes(name), `${name} removed at start-up`);
      assert.ok(!(await readdir(join(dir, 'vae'))).some((n) => n.includes('.tmp-')));
      assert.ok(logger.lines.some((l) => /removed 3 temporary files an interrupted write left/.test(l)), logger.lines.join('\n'));

      const summary = await engine.retrain({ force: true });
      const after = (await readdir(dir)).filter((n) => n.startsWith('index-')).sort();
      const current = await indexFiles(dir, summary.key);
      assert.deepEqual(after, [current.flat, current.graph, current.manifest].map((path) => path!.slice(dir.length + 1)).sort());
    } finally {
      await engine.close();
    }
  });
});

test('an index saved while images are being added is a file that loads, with every id', async () => {
  const dataDir = await tempDir();
  const random = mulberry32(1);
  const ns = await Namespace.open(dataDir, 'race', DIM, recordingLogger());
  for (let i = 0; i < 300; i++) await addImage(ns, random, i);
  // Before the save took the store's write lock, these adds ran while hnswlib wrote the file on its own thread.
  await Promise.all([ns.save(), ...Array.from({ length: 300 }, (_, i) => addImage(ns, random, 300 + i))]);
  const saved = await VectorIndex.load(ns.dir, 'raw');
  assert.ok(saved);
  await ns.close();
  const reloaded = await VectorIndex.load(ns.dir, 'raw');
  assert.equal(reloaded?.size, 600);
});

test('a graph file that matches its checksum but hnswlib cannot read is rebuilt from the index vectors and saved', async () => {
  const dataDir = await tempDir();
  const random = mulberry32(2);
  let ns = await Namespace.open(dataDir, 'unreadable', DIM, recordingLogger());
  for (let i = 0; i < 20; i++) await addImage(ns, random, i);
  await ns.close();
  const paths = await indexFiles(ns.dir, 'raw');
  const garbage = Buffer.alloc(4096, 7);
  await writeFile(paths.graph!, garbage);
  const manifest = JSON.parse(await readFile(paths.manifest, 'utf8')) as { graph: { crc32: string; bytes: number } };
  manifest.graph = { ...manifest.graph, crc32: crc32(garbage), bytes: garbage.length };
  await writeFile(paths.manifest, JSON.stringify(manifest));

  const logger = recordingLogger();
  ns = await Namespace.open(dataDir, 'unreadable', DIM, logger);
  assert.equal(ns.indexSize, 20);
  await ns.ready();
  assert.ok(logger.lines.some((l) => l.startsWith('warn') && /cannot be read/.test(l)), logger.lines.join('\n'));
  await ns.close();
  const saved = await VectorIndex.load(ns.dir, 'raw');
  assert.deepEqual(await saved?.ready(), { state: 'loaded' }, 'the rebuilt graph was saved');
});
