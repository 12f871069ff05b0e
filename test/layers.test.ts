import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The floors of docs/architecture.md ("Layers"), top first: a file may import its own floor and the ones below,
// never one above. Checked on the TypeScript sources, so it runs from dist/test like every other test.
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FLOORS: Array<[floor: number, prefixes: string[]]> = [
  [8, ['src/main.ts', 'src/cli.ts', 'src/cli/', 'src/data-move.ts', 'src/shard-manager.ts']],
  [7, ['src/app/']],
  [6, ['src/events/', 'src/commands/']],
  [5, ['src/bot/']],
  [4, ['src/index/', 'src/eval/', 'src/collage.ts']],
  [3, ['src/ml/']],
  [2, ['src/config.ts']],
  [1, ['src/util/', 'src/errors.ts', 'src/log.ts']],
];
/** Floors that must run without discord.js: the engine and everything under it. */
const NO_DISCORD_BELOW = 4;

function floorOf(file: string): number {
  for (const [floor, prefixes] of FLOORS) if (prefixes.some((p) => file === p || (p.endsWith('/') && file.startsWith(p)))) return floor;
  throw new Error(`${file} is on no floor: add it to FLOORS and to docs/architecture.md`);
}

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...(await sources(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Every `import … from '…'` / `export … from '…'` / `import('…')` of a file: relative ones as repo paths (.ts). */
async function importsOf(file: string): Promise<{ local: string[]; packages: string[] }> {
  const text = await readFile(join(ROOT, file), 'utf8');
  const specifiers = [...text.matchAll(/^\s*(?:import|export)\b[^;'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gm)].map((m) => m[1] ?? m[2] ?? m[3]);
  const local = specifiers.filter((s) => s.startsWith('.')).map((s) => normalize(join(dirname(file), s)).replace(/\.js$/, '.ts'));
  return { local, packages: specifiers.filter((s) => !s.startsWith('.')) };
}

test('imports run downhill: no file in src/ imports a floor above its own, and the engine and below never load discord.js', async () => {
  const files = await sources('src');
  assert.ok(files.length > 50, `found ${files.length} sources`);
  const upward: string[] = [];
  const discord: string[] = [];
  for (const file of files) {
    const floor = floorOf(file);
    const { local, packages } = await importsOf(file);
    for (const target of local) {
      const targetFloor = floorOf(relative('.', target));
      if (targetFloor > floor) upward.push(`${file} (floor ${floor}) imports ${target} (floor ${targetFloor})`);
    }
    if (floor <= NO_DISCORD_BELOW && packages.some((p) => p === 'discord.js' || p.startsWith('@discordjs/'))) discord.push(file);
  }
  assert.deepEqual(upward, [], 'imports that run up');
  assert.deepEqual(discord, [], 'engine-side files that import discord.js');
});

test('the CLI never loads discord.js: nothing reachable from src/cli.ts imports it', async () => {
  const seen = new Set<string>();
  const queue = ['src/cli.ts'];
  const offenders: string[] = [];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const { local, packages } = await importsOf(file);
    if (packages.some((p) => p === 'discord.js' || p.startsWith('@discordjs/'))) offenders.push(file);
    queue.push(...local.map((t) => relative('.', t)));
  }
  assert.ok(seen.size > 10, `walked ${seen.size} files`);
  assert.deepEqual(offenders, []);
});
