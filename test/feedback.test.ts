import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { test } from 'node:test';
import { createEngine } from '../src/index/engine.js';
import { rocchio } from '../src/index/feedback.js';
import { simulateFeedback } from '../src/eval/feedback-sim.js';
import { mulberry32 } from '../src/util/random.js';
import { referencePhotoPaths } from './helpers/fixtures.js';
import { tempDir } from './helpers/temp-dir.js';

test('rocchio: moves the query towards the liked and away from the disliked, as a unit vector', () => {
  const q = Float32Array.from([1, 0, 0]);
  const moved = rocchio(q, [Float32Array.from([0, 2, 0])], [Float32Array.from([0, 0, 5])], { alpha: 1, beta: 0.75, gamma: 0.25 });
  const norm = Math.hypot(...moved);
  assert.ok(Math.abs(norm - 1) < 1e-6);
  assert.ok(Math.abs(moved[0] - 1 / Math.hypot(1, 0.75, 0.25)) < 1e-6);
  assert.ok(Math.abs(moved[1] - 0.75 / Math.hypot(1, 0.75, 0.25)) < 1e-6);
  assert.ok(moved[2] < 0);
  assert.deepEqual(Array.from(rocchio(q, [], [])), [1, 0, 0]);
});

test('rocchio: measured from the centre of the keys, the move keeps only what the liked and disliked have in particular', () => {
  const w = { alpha: 1, beta: 1.5, gamma: 0.75 };
  const centre = Float32Array.from([0, 0, 0.8]);
  const q = Float32Array.from([0.6, 0, 0.8]);
  const liked = Float32Array.from([0, 0.6, 0.8]);
  const disliked = Float32Array.from([0, -0.6, 0.8]);
  const moved = rocchio(q, [liked], [disliked], w, centre);
  // α(q − c) + β(l − c) − γ(d − c) = (0.6, 1.5·0.6 + 0.75·0.6, 0): the shared z falls out entirely.
  const expected = [0.6, 1.35, 0].map((v) => v / Math.hypot(0.6, 1.35));
  moved.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `component ${i}: ${v} against ${expected[i]}`));
  // Nothing judged: the query's own direction, whatever the centre.
  assert.deepEqual(Array.from(rocchio(Float32Array.from([1, 0, 0]), [], [], w, centre)), [1, 0, 0]);
});

test('engine: feedback re-ranks in key space through the filter; judgements leave with their images and their asker', async (t) => {
  const dataDir = await tempDir();
  const engine = createEngine({ dataDir });
  t.after(() => engine.close());
  const photos = await referencePhotoPaths();
  for (const path of photos) await engine.index(await readFile(path), { source: path });
  const chelsea = photos.find((p) => basename(p) === 'chelsea.png')!;
  const plain = await engine.query(await readFile(chelsea), { k: 12 });
  const queryId = plain.self!.id;
  const ranks = (hits: typeof plain.hits) => new Map(hits.map((h, i) => [h.record.id, i]));
  const before = ranks(plain.hits);
  // Like the result ranked last, dislike the first: the liked one must climb and the disliked one must fall.
  const liked = plain.hits[plain.hits.length - 1].record.id;
  const disliked = plain.hits[0].record.id;

  await t.test('the liked result climbs, the disliked falls; the same through stored id, bytes and features', async () => {
    for (const input of [{ id: queryId }, await readFile(chelsea), { features: plain.features }]) {
      const moved = await engine.query(input, { k: 13, feedback: { liked: [liked], disliked: [disliked] } });
      // Bare features name no stored image, so the query image is among their hits: ranks are counted without it.
      const after = ranks(moved.hits.filter((h) => h.record.id !== queryId));
      assert.ok(after.get(liked)! < before.get(liked)!, `liked: rank ${before.get(liked)} → ${after.get(liked)}`);
      assert.ok(after.get(disliked)! > before.get(disliked)!, `disliked: rank ${before.get(disliked)} → ${after.get(disliked)}`);
      if (!('features' in input)) assert.ok(!moved.hits.some((h) => h.record.id === queryId), 'the query image itself is never a hit');
    }
  });

  await t.test('the filter still decides: feedback towards a refused image never shows it', async () => {
    const moved = await engine.query({ id: queryId }, { k: 12, feedback: { liked: [liked], disliked: [] }, filter: (r) => r.id !== liked });
    assert.ok(!moved.hits.some((h) => h.record.id === liked));
    assert.equal(moved.hits.length, 11);
  });

  await t.test('judgements are stored, and removed with the result image, the query image, and the asker', async () => {
    const store = await engine.feedback();
    assert.equal(await store.record({ asker: 'u1', query: { id: queryId }, result: liked, sign: 1, key: plain.key }), true);
    assert.equal(await store.record({ asker: 'u1', query: { id: queryId }, result: disliked, sign: -1, key: plain.key }), true);
    const other = plain.hits[3].record.id;
    assert.equal(await store.record({ asker: 'u2', query: { features: plain.features }, result: other, sign: 1, key: plain.key }), true);
    assert.equal(await store.record({ asker: 'u2', query: { id: queryId }, result: other, sign: -1, key: plain.key }), true);
    assert.equal((await store.all()).length, 4);
    const pairs = await store.judgedPairs(1280);
    assert.equal(pairs.pairs.length / 3, 1, 'u1 liked one and disliked one result of the same query');

    await engine.remove(disliked);
    assert.deepEqual((await store.all()).map((j) => [j.asker, j.result]).sort(), [['u1', liked], ['u2', other], ['u2', other]]);
    assert.equal(await store.record({ asker: 'u1', query: { id: queryId }, result: disliked, sign: -1, key: plain.key }), false, 'a removed image cannot be judged');
    assert.equal(await store.removeAsker('u2'), 2);
    assert.deepEqual((await store.all()).map((j) => j.asker), ['u1']);
    await engine.removeWhere((view) => view.id === queryId);
    assert.deepEqual(await store.all(), [], 'the query image took its judgements with it');
  });
});

test('simulated askers: with labels as the oracle, feedback raises P@k on overlapping clusters, and more with two rounds', () => {
  // Four classes whose centres lie close together in 8 dimensions, with wide spread: plain cosine mixes them up.
  const rand = mulberry32(3);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const n = 200;
  const d = 8;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 4);
  const keys = Float32Array.from({ length: n * d }, (_, t) => (t % d === labels[Math.floor(t / d)] ? 1 : 0) + 0.6 * gauss() + 2);
  const [p0, p1, p2] = simulateFeedback(keys, n, d, labels, { k: 20, rounds: 2, perRound: 2, seed: 1 });
  assert.ok(p1 > p0 + 0.05, `P@20 ${p0.toFixed(3)} → ${p1.toFixed(3)} after one round`);
  assert.ok(p2 > p1, `P@20 ${p1.toFixed(3)} → ${p2.toFixed(3)} after two rounds`);
  // Every key shares the offset +2: measured from the keys' mean, the move is towards the liked class itself.
  const [, u1] = simulateFeedback(keys, n, d, labels, { k: 20, rounds: 1, perRound: 2, seed: 1, centred: false });
  assert.ok(p1 > u1 + 0.02, `after one round, centred ${p1.toFixed(3)} against uncentred ${u1.toFixed(3)}`);
  // Weights that ignore the judgements change nothing (uncentred: from the centre, the query itself would move).
  const [q0, q1] = simulateFeedback(keys, n, d, labels, { k: 20, rounds: 1, perRound: 2, seed: 1, weights: { alpha: 1, beta: 0, gamma: 0 }, centred: false });
  assert.equal(q1, q0);
});
