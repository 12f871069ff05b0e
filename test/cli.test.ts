import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { nearDuplicate, referencePhotoPaths } from './helpers/fixtures.js';
import { cli } from './helpers/cli.js';
import { tempDir } from './helpers/temp-dir.js';


test('the CLI indexes a folder, reports failures, answers queries with a collage, and shows stats', async () => {
  const work = await tempDir();
  const dataDir = join(work, 'data');
  const folder = join(work, 'art', 'nested');
  await mkdir(folder, { recursive: true });
  const photos = await referencePhotoPaths();
  for (const photo of photos.slice(0, 8)) await copyFile(photo, join(folder, basename(photo)));
  await copyFile(photos[0], join(work, 'art', 'copy-of-first.png'));
  await writeFile(join(work, 'art', 'broken.png'), Buffer.from('<html>not an image</html>'));

  const indexed = await cli(dataDir, 'index', join(work, 'art'));
  assert.equal(indexed.code, 1, 'a failed file makes the exit code non-zero');
  assert.match(indexed.stdout, /Indexed 8, duplicates skipped 1, failed 1/);
  assert.match(indexed.stderr, /broken\.png: .+/);

  const again = await cli(dataDir, 'index', folder);
  assert.equal(again.code, 0);
  assert.match(again.stdout, /Indexed 0, duplicates skipped 8, failed 0/);

  const target = join(folder, basename(photos[2]));
  const queryFile = join(work, 'query.jpg');
  await writeFile(queryFile, await nearDuplicate(target));
  const collage = join(work, 'collage.png');
  const query = await cli(dataDir, 'query', queryFile, '-k', '5', '--json', '--collage', collage);
  assert.equal(query.code, 0, query.stderr);
  const answer = JSON.parse(query.stdout) as { key: string; hits: Array<{ path: string; score: number }> };
  assert.equal(answer.hits.length, 5);
  assert.equal(answer.hits[0].path, target);
  const meta = await sharp(await readFile(collage)).metadata();
  assert.equal(meta.format, 'png');
  assert.ok((meta.width ?? 0) > 6 * 128, 'query tile plus five results in a row');

  const table = await cli(dataDir, 'query', queryFile, '-k', '3');
  assert.match(table.stdout.split('\n')[0], new RegExp(`^\\s+1\\s+0\\.\\d{3}\\s+.*${basename(target)}$`));

  const stats = await cli(dataDir, 'stats', '--json');
  const parsed = JSON.parse(stats.stdout) as { images: number; key: string; indexBytes: number };
  assert.equal(parsed.images, 8);
  assert.equal(parsed.key, 'raw');
  assert.ok(parsed.indexBytes > 0);

  const badK = await cli(dataDir, 'query', queryFile, '-k', '0');
  assert.notEqual(badK.code, 0);
  assert.match(badK.stderr, /k must be/);
});
