import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { BotSettings } from '../src/bot/settings.js';
import { fakeBotEnv } from '../harness/fake-discord/client.js';
import { startFakeDiscord, type FakeDiscord } from '../harness/fake-discord/index.js';
import { askRelevant, messageLink, resultLinks } from './helpers/bot-world.js';
import { cli } from './helpers/cli.js';
import { nearDuplicate, referencePhotoPaths } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const START_MS = 180_000;

/** One machine: `npm start` with its own DATA_DIR and shard settings, its output kept for assertions. */
class Machine {
  output = '';
  private process?: ChildProcess;
  constructor(
    readonly dataDir: string,
    private readonly fake: FakeDiscord,
  ) {}

  async start(shards: Record<string, string>, ready: RegExp): Promise<void> {
    this.output = '';
    this.process = spawn(process.execPath, [MAIN], {
      cwd: this.dataDir,
      env: { PATH: process.env.PATH, HOME: this.dataDir, ...fakeBotEnv(this.fake), DATA_DIR: this.dataDir, AUTO_RETRAIN: 'false', QUERIES_PER_MINUTE: '1000', REGISTER_COMMANDS: 'none', ...shards },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString('utf8')));
    this.process.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString('utf8')));
    await waitFor(`ready: ${ready}`, () => ready.test(this.output), START_MS).catch((error: Error) => {
      throw new Error(`${error.message}\n${this.output}`);
    });
  }

  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(40_000, undefined, { ref: false })]);
  }
}

/**
 * Issue 13: a reshard from one machine to two. Machine A runs the whole bot (1 shard); then the split becomes 2
 * shards, shard 0 on A and shard 1 on B, and the guild that lands on shard 1 moves with `relevant export` on A and
 * `relevant import` on B. After the restart B answers that guild with the images A had indexed, A keeps serving
 * the other guild, and A's copy of the moved one is marked and never served.
 */
test('a reshard from one machine to two moves a guild with export/import and it answers from its new machine', async () => {
  const fake = await startFakeDiscord({ shards: 2 });
  const work = await mkdtemp(join(tmpdir(), 'relevant-reshard-'));
  const a = new Machine(join(work, 'a'), fake);
  const b = new Machine(join(work, 'b'), fake);
  after(async () => {
    await a.stop();
    await b.stop();
    await fake.close();
    await rm(work, { recursive: true, force: true });
  });
  const photos = await referencePhotoPaths();
  const painter = fake.addUser({ username: 'painter' }).id;
  const clubs: Array<{ guild: string; art: string }> = [];
  const settings = await BotSettings.open(a.dataDir);
  for (const shard of [0, 1]) {
    const { guild } = fake.addGuild({ name: `club ${shard}`, shard: [shard, 2] });
    fake.addMember(guild.id, painter);
    const art = fake.addChannel(guild.id, { name: 'art' }).id;
    await settings.watch(guild.id, art);
    clubs.push({ guild: guild.id, art });
  }
  await settings.close();
  const relevant = async (club: { guild: string; art: string }, photo: number): Promise<string[]> => {
    const reply = await fake.waitForReply(askRelevant(fake, { guildId: club.guild, channelId: club.art, userId: painter, image: await nearDuplicate(photos[photo]) }));
    return resultLinks(reply.original?.embeds);
  };
  const eventually = (what: string, check: () => Promise<boolean>) => waitFor(what, async () => (await check()) || (await sleep(300), false), 60_000);

  // One machine, one shard: both guilds are A's.
  await a.start({ SHARDS: '1' }, /shard 0 of 1: ready/);
  const posts: string[] = [];
  for (const [i, club] of clubs.entries()) {
    const message = await fake.postMessage({ channelId: club.art, authorId: painter, files: [{ filename: `p${i}.png`, data: await readFile(photos[i]) }] });
    posts.push(messageLink(club.guild, club.art, message.id));
  }
  for (const [i, club] of clubs.entries()) await eventually(`guild ${i} indexed on A`, async () => (await relevant(club, i)).includes(posts[i]));
  await a.stop();

  // The guild that shard 1 of 2 serves moves to B.
  const moved = clubs[1];
  const file = join(work, `${moved.guild}.export`);
  const exported = await cli(a.dataDir, '--namespace', moved.guild, 'export', file);
  assert.equal(exported.code, 0, exported.stderr);
  const imported = await cli(b.dataDir, 'import', file);
  assert.equal(imported.code, 0, imported.stderr);
  assert.ok(existsSync(join(a.dataDir, 'namespaces', moved.guild, 'MOVED')));

  await a.start({ TOTAL_SHARDS: '2', SHARD_LIST: '0' }, /shard 0 of 2: ready/);
  await b.start({ TOTAL_SHARDS: '2', SHARD_LIST: '1' }, /shard 1 of 2: ready/);
  assert.ok((await relevant(clubs[0], 0)).includes(posts[0]), 'A still answers the guild it kept');
  assert.ok((await relevant(moved, 1)).includes(posts[1]), 'B answers the moved guild with the images A had indexed');
  assert.equal(existsSync(join(b.dataDir, 'namespaces', clubs[0].guild)), false, 'B never opened the guild it does not serve');
  const bSettings = await BotSettings.open(b.dataDir);
  assert.deepEqual(await bSettings.watched(moved.guild), [moved.art], 'the watched channel moved with it');
  await bSettings.close();
});
