import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { BotSettings } from '../src/bot/settings.js';
import { referencePhotoPaths } from './helpers/fixtures.js';
import { cli } from './helpers/cli.js';
import { tempDir } from './helpers/temp-dir.js';

const GUILD = '412345678901234567';

const cliIn = (dataDir: string, ...args: string[]) => cli(dataDir, '--namespace', GUILD, ...args);

async function withSettings<T>(dataDir: string, use: (settings: BotSettings) => Promise<T>): Promise<T> {
  const settings = await BotSettings.open(dataDir);
  try {
    return await use(settings);
  } finally {
    await settings.close();
  }
}

test('a server’s data moves between machines as one verified file: export marks the source, import checks every byte', async () => {
  const work = await tempDir();
  const [machineA, machineB, machineC] = ['a', 'b', 'c'].map((m) => join(work, m));
  const art = join(work, 'art');
  await mkdir(art);
  const photos = await referencePhotoPaths();
  for (const photo of photos.slice(0, 6)) await copyFile(photo, join(art, basename(photo)));
  assert.equal((await cliIn(machineA, 'index', art)).code, 0);
  await withSettings(machineA, async (settings) => {
    await settings.watch(GUILD, '500000000000000001');
    await settings.setRepostNotices('500000000000000001', true);
    await settings.setAutoRetrain(GUILD, false);
    await settings.watch('999999999999999999', '500000000000000002');
  });
  const before = await cliIn(machineA, 'query', photos[0], '--json');
  assert.equal(before.code, 0, before.stderr);

  const file = join(work, `${GUILD}.export`);
  const exported = await cliIn(machineA, 'export', file);
  assert.equal(exported.code, 0, exported.stderr);
  assert.match(exported.stdout, /Exported 412345678901234567: \d+ files, .* 3 settings rows/);

  // The source no longer serves the moved collection, and will not export it twice.
  const stale = await cliIn(machineA, 'query', photos[0], '--json');
  assert.equal(stale.code, 2);
  assert.match(stale.stderr, /moved to another machine/);
  assert.match((await cliIn(machineA, 'export', join(work, 'again.export'))).stderr, /already exported/);

  // One flipped byte anywhere in the images' store: refused, and nothing is left behind.
  const bytes = await readFile(file);
  const damaged = Buffer.from(bytes);
  damaged[Math.floor(bytes.length / 2)] ^= 0xff;
  const damagedFile = join(work, 'damaged.export');
  await writeFile(damagedFile, damaged);
  const refused = await cliIn(machineC, 'import', damagedFile);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /damaged/);
  assert.deepEqual(await readdir(join(machineC, 'namespaces')).catch(() => []), []);
  // A file cut short is refused too.
  await writeFile(damagedFile, bytes.subarray(0, bytes.length - 100));
  assert.match((await cliIn(machineC, 'import', damagedFile)).stderr, /damaged/);

  const imported = await cliIn(machineB, 'import', file);
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /checksums verified/);
  const after = await cliIn(machineB, 'query', photos[0], '--json');
  assert.equal(after.code, 0, after.stderr);
  assert.deepEqual(JSON.parse(after.stdout), JSON.parse(before.stdout), 'the same answers on the new machine');
  await withSettings(machineB, async (settings) => {
    assert.deepEqual(await settings.watched(GUILD), ['500000000000000001']);
    assert.equal(await settings.repostNotices('500000000000000001'), true);
    assert.equal(await settings.autoRetrain(GUILD), false);
    assert.deepEqual(await settings.watched('999999999999999999'), [], 'another server’s settings stay behind');
  });
  assert.match((await cliIn(machineB, 'import', file)).stderr, /already holds/);
  assert.ok(!existsSync(join(machineB, 'namespaces', GUILD, 'MOVED')));
});
