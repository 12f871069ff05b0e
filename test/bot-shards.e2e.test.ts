import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { BotSettings } from '../src/bot/settings.js';
import { fakeBotEnv } from '../harness/fake-discord/client.js';
import { startFakeDiscord, type FakeDiscord } from '../harness/fake-discord/index.js';
import { askRelevant, messageLink, resultLinks } from './helpers/bot-world.js';
import { nearDuplicate, referencePhotoPaths } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
/** Two shard processes each load the model and log in, 5.5 s apart (Discord's identify spacing). */
const START_MS = 180_000;

interface Club {
  guild: string;
  art: string;
}

/**
 * Issue 13: `npm start` with SHARDS=auto against a fake Discord recommending 2 shards: discord.js's ShardingManager
 * runs two bot processes (real model, real SQLite, one shared DATA_DIR), each receiving only its own guilds.
 */
describe('the bot sharded over two processes', () => {
  let fake: FakeDiscord;
  let dataDir: string;
  let manager: ChildProcess;
  let output = '';
  const clubs: Club[] = [];
  let painter: string;
  let sculptor: string;
  let photos: string[];
  const identified: Array<[number, number]> = [];

  const shardLines = (pattern: RegExp) => [...output.matchAll(pattern)];
  const readyCount = (shard: number) => shardLines(new RegExp(`shard ${shard} of 2: ready`, 'g')).length;
  const pidsOf = (shard: number) => shardLines(new RegExp(`shard ${shard} of 2: process (\\d+) started`, 'g')).map((m) => Number(m[1]));

  before(async () => {
    fake = await startFakeDiscord({ shards: 2 });
    dataDir = await mkdtemp(join(tmpdir(), 'relevant-shards-'));
    photos = await referencePhotoPaths();
    painter = fake.addUser({ username: 'painter' }).id;
    sculptor = fake.addUser({ username: 'sculptor' }).id;
    const settings = await BotSettings.open(dataDir);
    for (const shard of [0, 1]) {
      const { guild } = fake.addGuild({ name: `club ${shard}`, shard: [shard, 2] });
      fake.addMember(guild.id, painter);
      fake.addMember(guild.id, sculptor);
      const art = fake.addChannel(guild.id, { name: 'art' }).id;
      await settings.watch(guild.id, art);
      clubs.push({ guild: guild.id, art });
    }
    await settings.close();
    fake.gateway.on('identified', (_session: string, shard: [number, number]) => identified.push(shard));
    manager = spawn(process.execPath, [MAIN], {
      cwd: dataDir,
      env: {
        PATH: process.env.PATH,
        HOME: dataDir,
        ...fakeBotEnv(fake),
        DATA_DIR: dataDir,
        SHARDS: 'auto',
        AUTO_RETRAIN: 'false',
        QUERIES_PER_MINUTE: '1000',
        REGISTER_COMMANDS: 'none',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    manager.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    manager.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    await waitFor('both shards ready', () => readyCount(0) === 1 && readyCount(1) === 1, START_MS).catch((error: Error) => {
      throw new Error(`${error.message}\n${output}`);
    });
  });

  after(async () => {
    if (manager && manager.exitCode === null) {
      const exited = new Promise((resolve) => manager.once('exit', resolve));
      manager.kill('SIGTERM');
      await Promise.race([exited, sleep(40_000, undefined, { ref: false })]);
    }
    // Only if the manager could not stop them: the shard processes this test started.
    for (const pid of [...pidsOf(0), ...pidsOf(1)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await fake?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const post = async (club: Club, authorId: string, photo: number) =>
    fake.postMessage({ channelId: club.art, authorId, files: [{ filename: `p${photo}.png`, data: await readFile(photos[photo]) }] });

  /** The result links of /relevant in `club` for a near-duplicate of `photo`. */
  const relevant = async (club: Club, photo: number): Promise<string[]> => {
    const id = askRelevant(fake, { guildId: club.guild, channelId: club.art, userId: sculptor, image: await nearDuplicate(photos[photo]) });
    const reply = await fake.waitForReply(id);
    return resultLinks(reply.original?.embeds);
  };
  const eventually = (what: string, check: () => Promise<boolean>) =>
    waitFor(what, async () => (await check()) || (await sleep(300), false), 60_000);

  test('each shard gets only its guilds; both answer /relevant; /forget-me reaches both; a killed shard comes back with its data', async () => {
    // The gateway saw two IDENTIFYs, [0, 2] and [1, 2] (the count from /gateway/bot), one per process.
    assert.deepEqual(identified.map((shard) => shard.join('/')).sort(), ['0/2', '1/2']);
    const [a, b] = clubs;
    const x = await post(a, painter, 0);
    const y = await post(b, painter, 1);
    const z = await post(b, sculptor, 2);
    await eventually('guild A (shard 0) answers with the painter’s image', async () => (await relevant(a, 0)).includes(messageLink(a.guild, a.art, x.id)));
    await eventually('guild B (shard 1) answers with both images', async () => {
      const links = await relevant(b, 1);
      return links.includes(messageLink(b.guild, b.art, y.id)) && links.includes(messageLink(b.guild, b.art, z.id));
    });

    // Kill shard 1's process outright; the manager starts a new one, which serves guild B from the same DATA_DIR.
    const [first] = pidsOf(1);
    process.kill(first, 'SIGKILL');
    await waitFor('shard 1 restarted', () => readyCount(1) === 2, START_MS);
    assert.notEqual(pidsOf(1)[1], first);
    const afterRestart = await relevant(b, 2);
    assert.ok(afterRestart.includes(messageLink(b.guild, b.art, y.id)) && afterRestart.includes(messageLink(b.guild, b.art, z.id)), 'nothing lost');

    // /forget-me in guild B (shard 1) removes the painter's images in guild A too (shard 0, through the manager).
    const forget = await fake.waitForReply(fake.slashCommand({ guildId: b.guild, channelId: b.art, userId: painter, name: 'forget-me' }));
    assert.match(forget.original?.content ?? '', /Removed 2 images you posted/);
    assert.ok(!(await relevant(a, 0)).includes(messageLink(a.guild, a.art, x.id)));
    const left = await relevant(b, 2);
    assert.ok(!left.includes(messageLink(b.guild, b.art, y.id)));
    assert.ok(left.includes(messageLink(b.guild, b.art, z.id)));
    assert.doesNotMatch(output, new RegExp(fake.token));

    // SIGTERM to `npm start` stops every shard process cleanly (each closes its engine), then the supervisor exits.
    const exited = new Promise<number | null>((resolve) => manager.once('exit', (code) => resolve(code)));
    manager.kill('SIGTERM');
    assert.equal(await exited, 0);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    assert.deepEqual([pidsOf(0)[0], pidsOf(1)[1]].filter(alive), []);
    assert.equal(shardLines(/shutting down/g).length, 2, 'both shard processes shut down through their own handler');
  });
});
