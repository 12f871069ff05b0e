import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { isAppError } from '../src/errors.js';
import { createEngine, namespaceDir, type Engine } from '../src/index/engine.js';
import { indexFiles } from '../src/index/vector-index.js';
import { waitFor } from './helpers/wait.js';
import { nearDuplicate, referencePhotoPaths, variants } from './helpers/fixtures.js';
import { recordingLogger } from './helpers/recording-logger.js';
import { tempDir } from './helpers/temp-dir.js';

async function indexAll(engine: Engine, paths: string[]): Promise<void> {
  for (const path of paths) await engine.index(await readFile(path), { source: path });
}

test('index → query round trip on real photos, across restarts, corruption and deletion', async (t) => {
  const dataDir = await tempDir();
  const photos = await referencePhotoPaths();
  const chelsea = photos.find((p) => basename(p) === 'chelsea.png')!;
  const owl = photos.find((p) => basename(p) === 'owl.jpg')!;

  let engine = createEngine({ dataDir });
  t.after(() => engine.close());
  await indexAll(engine, photos);
  assert.equal((await engine.stats()).images, photos.length);

  await t.test('a resized, re-encoded copy finds its original first', async () => {
    for (const original of [chelsea, owl]) {
      const result = await engine.query(await nearDuplicate(original), { k: 5 });
      assert.equal(result.key, 'raw');
      assert.equal(result.hits[0].record.source, original);
      assert.ok(result.hits[0].score > 0.8, `score ${result.hits[0].score}`);
    }
  });

  await t.test('the query image itself never appears, and k is respected', async () => {
    const result = await engine.query(await readFile(chelsea), { k: 20 });
    assert.equal(result.self?.source, chelsea);
    assert.equal(result.hits.length, photos.length - 1);
    assert.ok(!result.hits.some((h) => h.record.source === chelsea));
    const byId = await engine.query({ id: result.self!.id }, { k: 3 });
    assert.equal(byId.hits.length, 3);
    assert.ok(!byId.hits.some((h) => h.record.id === result.self!.id));
  });

  await t.test('exact duplicates are recognised, not indexed twice: a second path is a second reference', async () => {
    const again = await engine.index(await readFile(owl), { source: '/elsewhere/owl-copy.jpg' });
    assert.equal(again.status, 'duplicate');
    assert.equal(again.record.source, '/elsewhere/owl-copy.jpg');
    assert.deepEqual(again.record.refs.map((r) => r.source), [owl, '/elsewhere/owl-copy.jpg']);
    const same = await engine.index(await readFile(owl), { source: owl });
    assert.equal(same.status, 'duplicate');
    assert.equal(same.record.refs.length, 2, 'the same path read again adds nothing');
    assert.equal((await engine.stats()).images, photos.length);
  });

  await t.test('a filter decides what a caller may see', async () => {
    const result = await engine.query(await nearDuplicate(chelsea), { k: 20, filter: (r) => !r.source.endsWith('.png') });
    assert.ok(result.hits.length > 0);
    const thumbnail = await sharp(result.thumbnail!).metadata();
    assert.deepEqual([thumbnail.format, thumbnail.width], ['webp', 128], 'the query comes back as a thumbnail for the reply');
    assert.ok(result.hits.every((h) => !h.record.source.endsWith('.png')));
  });

  await t.test('the index persists across a restart', async () => {
    await engine.close();
    const log = recordingLogger();
    engine = createEngine({ dataDir, logger: log });
    const result = await engine.query(await nearDuplicate(chelsea), { k: 1 });
    assert.equal(result.hits[0].record.source, chelsea);
    assert.deepEqual(log.lines.filter((l) => /rebuild|reconciled/i.test(l)), []);
  });

  const corrupt = async (path: string) => {
    const bytes = await readFile(path);
    bytes[Math.floor(bytes.length / 2)] ^= 0x5a;
    await writeFile(path, bytes);
  };

  await t.test('a corrupted graph file is detected, rebuilt from the index vectors, and said so in the log', async () => {
    await engine.close();
    await corrupt((await indexFiles(namespaceDir(dataDir, 'local'), 'raw')).graph!);
    const log = recordingLogger();
    engine = createEngine({ dataDir, logger: log });
    const result = await engine.query(await nearDuplicate(owl), { k: 1 });
    assert.equal(result.hits[0].record.source, owl);
    await waitFor('the rebuild to be logged', () => log.lines.some((l) => l.startsWith('warn') && /checksum.*rebuilt the search graph/.test(l)));
    assert.equal((await engine.stats()).indexed, photos.length);
  });

  await t.test('a corrupted vector file is detected, the index rebuilt from the store, and said so in the log', async () => {
    await engine.close();
    await corrupt((await indexFiles(namespaceDir(dataDir, 'local'), 'raw')).flat!);
    const log = recordingLogger();
    engine = createEngine({ dataDir, logger: log });
    const result = await engine.query(await nearDuplicate(owl), { k: 1 });
    assert.equal(result.hits[0].record.source, owl);
    assert.ok(log.lines.some((l) => l.startsWith('warn') && /checksum.*Rebuilding it from the store/.test(l)), log.lines.join('\n'));
    assert.equal((await engine.stats()).indexed, photos.length);
  });

  await t.test('a removed image never comes back, also after a restart', async () => {
    const { self } = await engine.query(await readFile(owl), { k: 1 });
    assert.ok(self);
    assert.equal((await engine.remove(self.id))?.source, owl);
    const after = await engine.query(await nearDuplicate(owl), { k: 20 });
    assert.ok(!after.hits.some((h) => h.record.id === self.id));
    await engine.close();
    engine = createEngine({ dataDir });
    const restarted = await engine.query(await nearDuplicate(owl), { k: 20 });
    assert.ok(!restarted.hits.some((h) => h.record.id === self.id));
    assert.equal((await engine.stats()).images, photos.length - 1);
    assert.equal(await engine.remove(self.id), undefined);
  });
});

test('bad input gets a typed error naming the reason and loses nothing', async () => {
  const engine = createEngine({ dataDir: await tempDir(), maxInputBytes: 5_000_000, maxInputPixels: 1_000_000 });
  try {
    const photos = await referencePhotoPaths();
    await indexAll(engine, photos.slice(0, 3));
    const png = await readFile(photos.find((p) => p.endsWith('.png'))!);
    const huge = await sharp({ create: { width: 2000, height: 1000, channels: 3, background: '#888' } }).png().toBuffer();
    const cases: Array<[string, Uint8Array, string]> = [
      ['empty', new Uint8Array(0), 'IMAGE_EMPTY'],
      ['truncated PNG', png.subarray(0, Math.floor(png.length / 3)), 'IMAGE_CORRUPT'],
      ['random bytes', Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251), 'IMAGE_UNSUPPORTED'],
      ['HTML named .png', Buffer.from('<!doctype html><html><body>not an image</body></html>'), 'IMAGE_UNSUPPORTED'],
      ['SVG', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><image href="file:///etc/passwd"/></svg>'), 'IMAGE_UNSUPPORTED'],
      ['more pixels than allowed', huge, 'IMAGE_TOO_MANY_PIXELS'],
      ['too many bytes', Buffer.alloc(6_000_000, 1), 'IMAGE_TOO_LARGE'],
    ];
    for (const [name, bytes, code] of cases) {
      await assert.rejects(engine.index(bytes, { source: name }), (error) => isAppError(error, code as never) && error.message.length > 0, name);
    }
    assert.equal((await engine.stats()).images, 3);
  } finally {
    await engine.close();
  }
});

test('retrain: the quality gate accepts a good candidate, rejects a worse one, and force overrides it', async () => {
  const dataDir = await tempDir();
  const photos = await referencePhotoPaths();
  const good = { epochs: 40, hidden: 256, latent: 32, seed: 7 };
  // Every image here has eight edited siblings, so finding an edited copy's exact original is far harder than in a
  // real collection: the edit-recall floor is lowered (the default is validated in docs/relevance.md).
  const keyRule = { minEditRecallVsRaw: 0.5 };
  let engine = createEngine({ dataDir, vaeHyper: good, keyRule });
  try {
    await assert.rejects(engine.retrain(), (error) => isAppError(error, 'NOT_ENOUGH_DATA'));
    for (const path of photos) {
      for (const [i, bytes] of (await variants(path, 9)).entries()) await engine.index(bytes, { source: `${path}#${i}` });
    }
    const phases = new Set<string>();
    const running = engine.retrain({ onProgress: (p) => phases.add(p.phase) });
    await assert.rejects(engine.retrain(), (error) => isAppError(error, 'BUSY'));
    const accepted = await running;
    assert.equal(accepted.swapped, true, accepted.gate.reason);
    assert.equal(accepted.forced, false);
    assert.equal(accepted.previousKey, 'raw');
    // Any candidate may win: the one whose edited copies find their originals most often.
    assert.match(accepted.key, /^(vae-|pca32-|lw\d+-)/);
    assert.ok(accepted.trainedOn < photos.length * 9, 'the gate’s held-out images are not trained on');
    assert.ok(accepted.gate.candidate.overlap >= 0.3, `overlap ${accepted.gate.candidate.overlap}`);
    assert.ok(accepted.activeUnits > 0);
    assert.deepEqual(accepted.gate.candidates.map((c) => c.kind), ['vae', 'pca', 'learned-whitening'], 'the VAE, PCA and the learned whitening are all judged');
    assert.ok(['training', 'checking', 'swapping'].every((p) => phases.has(p)));

    const chelsea = photos.find((p) => basename(p) === 'chelsea.png')!;
    const result = await engine.query(await nearDuplicate(chelsea), { k: 5 });
    assert.equal(result.key, accepted.key);
    const family = result.hits.filter((h) => h.record.source.startsWith(`${chelsea}#`)).length;
    assert.ok(family >= 3, `only ${family} of the top 5 are chelsea variants`);

    await engine.close();
    // Without thumbnails there are no edited copies to learn a whitening from (the retrain judges the other two) nor
    // to check edit recall with: the overlap alone decides, and with no margin the assertion below (an overlap under
    // the current key's) is the refusal itself. With thumbnails, Lw fitted again on the same images would pass.
    engine = createEngine({ dataDir, vaeHyper: { epochs: 1, hidden: 8, latent: 2, seed: 1 }, keyRule: { ...keyRule, margin: 0 }, thumbnails: false });
    const rejected = await engine.retrain();
    assert.deepEqual(rejected.gate.candidates.map((c) => c.kind), ['vae', 'pca']);
    assert.equal(rejected.swapped, false, rejected.gate.reason);
    assert.equal(rejected.key, accepted.key, 'the current model stays active');
    assert.ok(rejected.gate.candidate.overlap < rejected.gate.current.overlap, rejected.gate.reason);
    assert.match(rejected.gate.reason, /stays active/);
    assert.equal((await engine.stats()).key, accepted.key);

    const forced = await engine.retrain({ force: true });
    assert.equal(forced.swapped, true);
    assert.equal(forced.forced, true);
    assert.equal(forced.key, forced.candidateKey);

    await engine.close();
    engine = createEngine({ dataDir });
    const stats = await engine.stats();
    assert.equal(stats.key, forced.key, 'the switch survives a restart');
    assert.equal(stats.vae?.latentDim, 2);
  } finally {
    await engine.close();
  }
});

test('images grouped by a ref are removed together; predicates and whole namespaces can be dropped', async () => {
  const dataDir = await tempDir();
  const engine = createEngine({ dataDir });
  try {
    const photos = await referencePhotoPaths();
    for (const [i, path] of photos.slice(0, 6).entries()) {
      await engine.index(await readFile(path), { namespace: 'guild1', source: path, ref: `message${i % 3}`, extra: { channel: i < 4 ? 'a' : 'b' } });
    }
    await engine.index(await readFile(photos[0]), { namespace: 'guild2', source: photos[0] });

    const thumbnail = await engine.thumbnail(1, { namespace: 'guild1' });
    assert.ok(thumbnail);
    const meta = await sharp(thumbnail).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 128, 128]);

    const removed = await engine.removeByRef('message0', { namespace: 'guild1' });
    assert.deepEqual(removed.map((r) => r.source).sort(), [photos[0], photos[3]].sort());
    assert.equal(await engine.thumbnail(removed[0].id, { namespace: 'guild1' }), undefined);
    assert.deepEqual(await engine.removeByRef('message0', { namespace: 'guild1' }), []);

    const channelB = await engine.removeWhere((r) => r.extra?.channel === 'b', { namespace: 'guild1' });
    assert.deepEqual(channelB.map((r) => r.source).sort(), [photos[4], photos[5]].sort());
    assert.equal((await engine.stats('guild1')).images, 2);
    const left = await engine.query(await readFile(photos[1]), { namespace: 'guild1', k: 20 });
    assert.deepEqual(left.hits.map((h) => h.record.source), [photos[2]]);

    await engine.dropNamespace('guild1');
    assert.deepEqual(await engine.namespaces(), ['guild2']);
    assert.equal((await engine.stats('guild2')).images, 1, 'other namespaces are untouched');
  } finally {
    await engine.close();
  }
});

test('one image per content, one reference per post: visible through any reference, removed with its last one', async () => {
  const dataDir = await tempDir();
  const engine = createEngine({ dataDir });
  try {
    const [first, second] = await referencePhotoPaths();
    const bytes = await readFile(first);
    const post = (message: string, channel: string, author: string) => ({
      namespace: 'g',
      source: `discord:g/${channel}/${message}/att`,
      ref: message,
      extra: { channelId: channel, messageId: message, authorId: author },
    });
    const a = await engine.index(bytes, post('m1', 'public', 'alice'));
    const b = await engine.index(bytes, post('m2', 'private', 'bob'));
    await engine.index(await readFile(second), post('m3', 'public', 'alice'));
    assert.deepEqual([a.status, b.status], ['indexed', 'duplicate']);
    assert.equal(b.record.id, a.record.id);
    assert.equal(b.record.extra?.channelId, 'private', 'the duplicate is seen through its own post');
    assert.equal((await engine.stats('g')).images, 2);
    assert.deepEqual((await engine.get(a.record.id, { namespace: 'g' }))?.refs.map((r) => r.ref), ['m1', 'm2']);

    // A caller who can read only the private channel finds the image there, shown through that post.
    const privateOnly = await engine.query(await readFile(second), { namespace: 'g', filter: (r) => r.extra?.channelId === 'private' });
    assert.deepEqual(privateOnly.hits.map((h) => [h.record.id, h.record.extra?.messageId]), [[a.record.id, 'm2']]);
    assert.deepEqual(privateOnly.hits[0].record.refs.map((r) => r.ref), ['m2'], 'a hit carries only the reference it was accepted through');
    assert.deepEqual(await engine.findByRef('m2', { namespace: 'g' }).then((views) => views.map((v) => v.source)), ['discord:g/private/m2/att']);

    // Deleting the first post removes one reference; the image stays for the second post.
    const gone = await engine.removeByRef('m1', { namespace: 'g' });
    assert.deepEqual(gone.map((r) => [r.id, r.extra?.messageId, r.imageRemoved]), [[a.record.id, 'm1', false]]);
    assert.equal((await engine.stats('g')).images, 2);
    const afterFirst = await engine.query(await readFile(second), { namespace: 'g', filter: (r) => r.extra?.channelId === 'public' });
    assert.deepEqual(afterFirst.hits.map((h) => h.record.id), [], 'no public post of it is left');

    // A `where` that picks nothing removes nothing; the author's last reference takes the image with it.
    assert.deepEqual(await engine.removeByRef('m2', { namespace: 'g', where: (v) => v.extra?.channelId === 'public' }), []);
    const bobs = await engine.removeWhere((r) => r.extra?.authorId === 'bob', { namespace: 'g' });
    assert.deepEqual(bobs.map((r) => [r.id, r.imageRemoved]), [[a.record.id, true]]);
    assert.equal(await engine.get(a.record.id, { namespace: 'g' }), undefined);
    assert.equal(await engine.thumbnail(a.record.id, { namespace: 'g' }), undefined);
    assert.equal((await engine.stats('g')).images, 1);
    const again = await engine.index(bytes, post('m4', 'public', 'carol'));
    assert.equal(again.status, 'indexed', 'content whose last reference went is new again');
    assert.notEqual(again.record.id, a.record.id, 'ids are never reused');
  } finally {
    await engine.close();
  }
});
