import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { askUntilDecided } from '../src/eval/simulated-askers.js';
import { createEngine, namespaceDir } from '../src/index/engine.js';
import type { StoredJudgement } from '../src/index/feedback-store.js';
import { Namespace, vaeDir } from '../src/index/namespace.js';
import { FeatureStore } from '../src/index/store.js';
import { posterOf } from '../src/index/style-key.js';
import { decide, interleave, tally, TRIAL_ANSWERS, TRIAL_DAYS, type TrialState } from '../src/index/style-trial.js';
import { indexFiles } from '../src/index/vector-index.js';
import { silentLogger } from '../src/log.js';
import { saveVae } from '../src/ml/vae-files.js';
import { trainVae } from '../src/ml/vae-train.js';
import { mulberry32 } from '../src/util/random.js';
import { FEATURE_DIM } from './helpers/synthetic-features.js';
import { recordingLogger } from './helpers/recording-logger.js';
import { tempDir } from './helpers/temp-dir.js';

test('team-draft interleaving: no duplicates, each key’s picks in its own order, picks balanced', () => {
  const random = mulberry32(5);
  for (let round = 0; round < 300; round++) {
    const universe = 30;
    const list = () => [...new Set(Array.from({ length: Math.floor(random() * 25) }, () => Math.floor(random() * universe)))].map((id) => ({ id }));
    const current = list();
    const candidate = list();
    const k = 1 + Math.floor(random() * 20);
    const out = interleave(current, candidate, k, random);
    const ids = out.map((h) => h.id);
    assert.equal(new Set(ids).size, ids.length, 'no result shown twice');
    assert.equal(out.length, Math.min(k, new Set([...current, ...candidate].map((h) => h.id)).size));
    for (const team of ['current', 'candidate'] as const) {
      const source = team === 'current' ? current : candidate;
      // Each pick is its key's best result not shown before it.
      for (const [i, hit] of out.entries()) {
        if (hit.team !== team) continue;
        const before = new Set(ids.slice(0, i));
        assert.equal(hit.id, source.find((h) => !before.has(h.id))!.id, `round ${round}: pick ${i} of ${team}`);
      }
    }
    const picks = (team: string) => out.filter((h) => h.team === team).length;
    if (current.length >= k && candidate.length >= k && new Set([...current, ...candidate].map((h) => h.id)).size >= k) {
      assert.ok(Math.abs(picks('current') - picks('candidate')) <= 1, `round ${round}: picks balanced`);
    }
  }
});

test('a trial counts judged answers since it started, by the key that contributed each judged result', () => {
  const trial: TrialState = { candidate: 'raw+style-ab', current: 'raw', started: '2026-01-02T00:00:00.000Z' };
  const j = (asker: string, queryId: number, key: string, sign: 1 | -1, at = '2026-01-03T00:00:00.000Z'): StoredJudgement => ({ asker, queryId, result: 1, sign, key, at });
  const counted = tally(trial, [
    j('a', 1, 'raw+style-ab', 1),
    j('a', 1, 'raw+style-ab', 1),
    j('a', 1, 'raw', 1), // a: candidate +2, current +1: candidate wins
    j('b', 1, 'raw', -1), // b: a dislike of the current key's result: candidate wins
    j('c', 2, 'raw', 1),
    j('c', 2, 'raw+style-ab', -1), // c: current wins
    j('d', 2, 'raw', 1),
    j('d', 2, 'raw+style-ab', 1), // d: tie
    j('e', 3, 'raw+style-ab', 1, '2026-01-01T00:00:00.000Z'), // before the trial
    j('f', 3, 'vae-old', 1), // another key
  ]);
  assert.deepEqual(counted, { candidateWins: 2, currentWins: 1, ties: 1 });
  assert.equal(decide(counted), 'running');
  assert.equal(decide({ candidateWins: TRIAL_ANSWERS - 10, currentWins: 10, ties: 3 }), 'adopt');
  assert.equal(decide({ candidateWins: 12, currentWins: TRIAL_ANSWERS - 12, ties: 0 }), 'refuse');
  assert.equal(decide({ candidateWins: 12, currentWins: 12, ties: 9 }), 'running');
});

/**
 * 160 images: 4 posters × 40, each the poster's strong style plus one of 8 subjects. With `posterIsStyle`, the
 * subject is the label the askers judge by (the style key finds it across posters); otherwise each poster posts
 * one subject pair and the askers judge by poster, so taking the poster's mean out removes what they look for.
 */
async function collection(posterIsStyle: boolean): Promise<{ dataDir: string; labelOf: Map<number, string>; ids: number[] }> {
  const random = mulberry32(posterIsStyle ? 11 : 12);
  const vector = (scale: number) => Float32Array.from({ length: FEATURE_DIM }, () => (random() < 0.1 ? random() * scale : 0));
  const styles = Array.from({ length: 4 }, () => vector(6));
  const subjects = Array.from({ length: 8 }, () => vector(3));
  const dataDir = await tempDir();
  const store = await FeatureStore.open(join(namespaceDir(dataDir, 'local'), 'store.sqlite'));
  const labelOf = new Map<number, string>();
  const ids: number[] = [];
  for (let i = 0; i < 160; i++) {
    const poster = i % 4;
    const subject = posterIsStyle ? Math.floor(i / 4) % 8 : 2 * poster + (Math.floor(i / 4) % 2);
    const noise = vector(1);
    const features = Float32Array.from(noise, (n, d) => n + styles[poster][d] + subjects[subject][d]);
    const record = { sha256: `sha-${i}`, source: `synthetic/${i}.png`, width: 1, height: 1, addedAt: new Date(0).toISOString(), extra: { authorId: `poster${poster}` } };
    const stored = await store.exclusive(() => store.insert(record, features));
    labelOf.set(stored.id, posterIsStyle ? `subject${subject}` : `poster${poster}`);
    ids.push(stored.id);
  }
  await store.close();
  return { dataDir, labelOf, ids };
}

const TINY = { hidden: 32, latent: 8, epochs: 2, seed: 4 };

test('a retrain starts a style trial that the askers’ judgements adopt where posters are styles; it survives a restart', async () => {
  const { dataDir, labelOf, ids } = await collection(true);
  let engine = createEngine({ dataDir, retrainPolicy: false, autoRetrain: false, vaeHyper: TINY });
  const precision = async () => {
    let hits = 0;
    for (const id of ids) hits += (await engine.query({ id }, { k: 10, keys: 'current' })).hits.filter((h) => labelOf.get(h.record.id) === labelOf.get(id)).length;
    return hits / (10 * ids.length);
  };
  try {
    await engine.retrain();
    const before = await precision();
    const trial = (await engine.stats()).trial;
    assert.ok(trial, 'the retrain started a trial');
    assert.match(trial.candidate, /\+style-[0-9a-f]+$/);
    // While it runs, answers carry the key each result was drafted from.
    const { hits } = await engine.query({ id: ids[0] }, { k: 20 });
    assert.deepEqual(new Set(hits.map((h) => h.key)), new Set([trial.candidate, (await engine.stats()).key]));
    // A restart mid-trial: the trial goes on from its own index, saved beside the current one.
    await engine.close();
    const log = recordingLogger();
    engine = createEngine({ dataDir, retrainPolicy: false, autoRetrain: false, vaeHyper: TINY, logger: log });
    assert.equal((await engine.stats()).trial?.candidate, trial.candidate);
    assert.ok(log.lines.some((line) => line.includes('from its saved index')), log.lines.join('\n'));
    const asked = await askUntilDecided(engine, ids, (id) => labelOf.get(id)!, { seed: 1, k: 20, maxAnswers: 200 });
    assert.equal(asked.decision, 'adopt');
    const stats = await engine.stats();
    assert.equal(stats.key, trial.candidate);
    assert.equal(stats.trial, undefined);
    const after = await precision();
    assert.ok(after > before + 0.2, `P@10 ${before.toFixed(3)} → ${after.toFixed(3)}`);
    // The adopted key is saved: a restart answers from it without rebuilding.
    await engine.close();
    engine = createEngine({ dataDir, retrainPolicy: false, autoRetrain: false, vaeHyper: TINY });
    assert.equal((await engine.stats()).key, trial.candidate);
    assert.equal((await precision()).toFixed(6), after.toFixed(6));
    // /forget-me: the poster's offset leaves the style key's file.
    const dir = namespaceDir(dataDir, 'local');
    const styleFile = (await readdir(dir)).find((name) => name.startsWith('style-'))!;
    assert.ok((await readFile(join(dir, styleFile), 'utf8')).includes('poster1'));
    await engine.forgetPoster('poster1');
    assert.ok(!(await readFile(join(dir, styleFile), 'utf8')).includes('poster1'));
  } finally {
    await engine.close();
  }
});

test('a trial the askers leave undecided for TRIAL_DAYS ends at the next answer, keeping the current key', async () => {
  const { dataDir, ids } = await collection(true);
  let engine = createEngine({ dataDir, retrainPolicy: false, autoRetrain: false, vaeHyper: TINY });
  try {
    await engine.retrain();
    const { key, trial } = await engine.stats();
    assert.ok(trial, 'the retrain started a trial');
    await engine.close();
    const store = await FeatureStore.open(join(namespaceDir(dataDir, 'local'), 'store.sqlite'));
    const state = (await store.getMeta<TrialState>('styleTrial'))!;
    await store.setMeta('styleTrial', { ...state, started: new Date(Date.now() - (TRIAL_DAYS + 1) * 86_400_000).toISOString() });
    await store.close();
    engine = createEngine({ dataDir, retrainPolicy: false, autoRetrain: false, vaeHyper: TINY });
    assert.equal((await engine.stats()).trial?.candidate, trial.candidate, 'a restart alone does not end it');
    const { hits } = await engine.query({ id: ids[0] }, { k: 20 });
    assert.ok(hits.length > 0 && hits.every((h) => h.key !== trial.candidate), 'the answer is the current key’s alone');
    const stats = await engine.stats();
    assert.equal(stats.trial, undefined);
    assert.equal(stats.key, key);
  } finally {
    await engine.close();
  }
});

test('where posters are subjects, the askers’ judgements refuse the style key and the key stays', async () => {
  const { dataDir, labelOf, ids } = await collection(false);
  let engine = createEngine({ dataDir, retrainPolicy: false, autoRetrain: false, vaeHyper: TINY });
  try {
    await engine.retrain();
    const { key, trial } = await engine.stats();
    assert.ok(trial, 'the retrain started a trial');
    // Closing saves the trial's index beside the current one.
    await engine.close();
    assert.ok((await readdir(namespaceDir(dataDir, 'local'))).some((name) => name.includes(trial.candidate)));
    engine = createEngine({ dataDir, retrainPolicy: false, autoRetrain: false, vaeHyper: TINY });
    const asked = await askUntilDecided(engine, ids, (id) => labelOf.get(id)!, { seed: 1, k: 20, maxAnswers: 200 });
    assert.equal(asked.decision, 'refuse');
    const stats = await engine.stats();
    assert.equal(stats.key, key);
    assert.equal(stats.trial, undefined);
    const left = await readdir(namespaceDir(dataDir, 'local'));
    assert.deepEqual(left.filter((name) => name.startsWith('style-')), [], 'the refused offsets are removed');
    assert.deepEqual(left.filter((name) => name.includes(trial.candidate)), [], 'and the refused key’s index files');
  } finally {
    await engine.close();
  }
});

test('a style trial’s index, fitted and built in a worker, keys every stored image as the namespace does, on raw features and on a VAE, with images added and removed during the fit', async () => {
  for (const keyed of ['raw', 'vae'] as const) {
    const { dataDir, ids } = await collection(true);
    const dir = namespaceDir(dataDir, 'local');
    if (keyed === 'vae') {
      const store = await FeatureStore.open(join(dir, 'store.sqlite'));
      const rows: Float32Array[] = [];
      for await (const image of store.scan()) rows.push(image.features);
      const features = new Float32Array(rows.length * FEATURE_DIM);
      rows.forEach((row, i) => features.set(row, i * FEATURE_DIM));
      const vae = await trainVae(features, rows.length, TINY);
      await saveVae(vae, vaeDir(dir, vae.meta.id));
      await store.setMeta('activeKey', { kind: 'vae', vaeId: vae.meta.id });
      await store.close();
    }
    const ns = await Namespace.open(dataDir, 'local', FEATURE_DIM, silentLogger);
    try {
      const starting = ns.startTrial();
      // While the worker fits: one image more (a poster's), one less. Whether the fit read them or not, the trial
      // must end up holding exactly the store.
      const added = await ns.store.exclusive(async () => {
        const record = { sha256: 'sha-late', source: 'synthetic/late.png', width: 1, height: 1, addedAt: new Date(0).toISOString(), extra: { authorId: 'poster2' } };
        const stored = await ns.store.insert(record, (await ns.store.get(ids[5]))!.features);
        ns.addToIndex(stored.id, (await ns.store.get(stored.id))!.features, 'poster2');
        await ns.store.delete(ids[7]);
        ns.removeFromIndex(ids[7]);
        return stored.id;
      });
      assert.equal(await starting, true, `${keyed}: the trial started`);
      const candidate = ns.candidate()!;
      assert.match(candidate.id, keyed === 'raw' ? /^raw\+style-/ : /^vae-.+\+style-/);
      // The worker saved the index it built and this thread loaded it (a fit on this thread builds it in memory).
      assert.ok((await indexFiles(dir, candidate.id)).graph, `${keyed}: the trial's index files were written by its build`);
      let count = 0;
      for await (const image of ns.store.scan()) {
        count += 1;
        const [best] = candidate.search(candidate.key(image.features, posterOf(image)), 1);
        assert.equal(best.id, image.id, `${keyed}: image ${image.id}`);
        assert.ok(best.score > 0.9999, `${keyed}: image ${image.id}: cosine ${best.score}`);
      }
      assert.equal(candidate.size, count, `${keyed}: the trial's index holds the store (${ids.length} - 1 + 1 images)`);
      assert.ok(count === ids.length && (await ns.store.get(added)) && !(await ns.store.get(ids[7])));
    } finally {
      await ns.close();
    }
  }
});
