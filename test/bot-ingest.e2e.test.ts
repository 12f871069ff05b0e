import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ApplicationCommandOptionType } from 'discord.js';
import type { APIEmbed } from 'discord-api-types/v10';
import { startFakeDiscord, type FakeDiscord } from '../harness/fake-discord/index.js';
import { startBotWorld, resultLinks, type BotWorld } from './helpers/bot-world.js';
import { nearDuplicate, referencePhotoPaths, variants } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

function watchCommand(world: BotWorld, guildId: string, channelId: string, userId: string): string {
  return world.fake.slashCommand({ guildId, channelId, userId, name: 'watch', options: [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: channelId }] });
}

describe('the bot indexes watched channels and forgets what Discord deletes', () => {
  const worlds: BotWorld[] = [];
  const dirs: string[] = [];
  const fakes: FakeDiscord[] = [];
  after(async () => {
    for (const world of worlds) await world.stop();
    for (const fake of fakes) await fake.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  /** A bot on its own data dir and fake Discord (to be restarted on them), with a guild, #art and a member. */
  async function restartableWorld() {
    const dataDir = await mkdtemp(join(tmpdir(), 'relevant-backfill-'));
    dirs.push(dataDir);
    const fake = await startFakeDiscord();
    fakes.push(fake);
    const world = await startBotWorld({ dataDir, fake });
    const { guild } = fake.addGuild();
    const art = fake.addChannel(guild.id, { name: 'art' }).id;
    const painter = fake.addUser({ username: 'painter' }).id;
    fake.addMember(guild.id, painter);
    return { dataDir, fake, world, guild, art, painter };
  }

  test('backfill reads a channel’s history in pages, resumes from its cursor after a restart, and skips bots', async () => {
    const photos = await referencePhotoPaths();
    const { dataDir, fake, world, guild, art, painter } = await restartableWorld();
    const robot = fake.addUser({ username: 'robot', bot: true }).id;
    fake.addMember(guild.id, robot);
    // 250 messages of history, oldest first; images at 8 positions spread over three pages, one of them by a bot.
    const imageAt = new Map([[3, 0], [40, 1], [99, 2], [120, 3], [160, 4], [201, 5], [230, 6], [249, 7]]);
    const start = Date.now() - 250 * 60_000;
    const history = [];
    for (let i = 0; i < 250; i++) {
      const photo = imageAt.get(i);
      history.push(
        fake.postMessage({
          channelId: art,
          authorId: i === 201 ? robot : painter,
          content: `message ${i}`,
          files: photo === undefined ? [] : [{ filename: `p${i}.png`, data: await readFile(photos[photo]) }],
          timestamp: new Date(start + i * 60_000),
          dispatch: false,
        }),
      );
    }
    // As if an earlier run had read the newest page before it stopped: the cursor is message 150.
    await world.settings.watch(guild.id, art);
    await world.settings.saveBackfill({ guildId: guild.id, channelId: art, before: history[150].id, done: false, messages: 100, images: 0 });
    await world.stop();

    const restarted = await startBotWorld({ dataDir, fake });
    worlds.push(restarted);
    await waitFor('the resumed backfill', async () => (await restarted.settings.backfill(art))?.done === true);
    // Only messages older than the cursor were read after the restart: images 3, 40, 99, 120.
    assert.equal((await restarted.engine.stats(guild.id)).images, 4);

    await restarted.settings.unwatch(guild.id, art);
    const id = watchCommand(restarted, guild.id, art, guild.ownerId);
    const reply = await restarted.fake.waitForReply(id);
    assert.match(reply.original?.content ?? '', /Now indexing/);
    await waitFor('the full backfill', async () => (await restarted.settings.backfill(art))?.done === true);
    const state = await restarted.settings.backfill(art);
    assert.equal(state?.messages, 251, 'the history and the bot’s own reply to /watch');
    assert.equal((await restarted.engine.stats(guild.id)).images, 7, 'eight images, one posted by a bot');
    await waitFor('the status message', () => /251 messages read, \d+ images indexed\. Done\./.test(restarted.fake.state.messages.get(reply.original!.id)?.content ?? ''));
    const pages = restarted.fake.requests.filter((r) => r.method === 'GET' && r.route === '/channels/:channelId/messages');
    assert.ok(pages.every((r) => Number(r.query.limit) === 100));
  });

  test('a /watch killed before its backfill saved a state, and a page cut short by a kill: the restart reads all and counts all', async () => {
    const photos = await referencePhotoPaths();
    const { dataDir, fake, world, guild, art, painter } = await restartableWorld();
    const imageAt = new Map([[10, 0], [50, 1], [90, 2], [100, 3], [110, 4], [119, 5]]);
    const start = Date.now() - 120 * 60_000;
    for (let i = 0; i < 120; i++) {
      const photo = imageAt.get(i);
      const files = photo === undefined ? [] : [{ filename: `p${i}.png`, data: await readFile(photos[photo]) }];
      fake.postMessage({ channelId: art, authorId: painter, files, timestamp: new Date(start + i * 60_000), dispatch: false });
    }
    // The state the crash test found: /watch had committed the watch and was killed before the backfill saved
    // its first state, and (another time) a run had indexed two images of its page before being killed.
    await world.settings.watch(guild.id, art);
    for (const photo of [5, 4]) await world.engine.index(await readFile(photos[photo]), { namespace: guild.id, source: 'a killed run' });
    await world.stop();

    const restarted = await startBotWorld({ dataDir, fake });
    worlds.push(restarted);
    await waitFor('the backfill started at the restart', async () => (await restarted.settings.backfill(art))?.done === true);
    assert.equal((await restarted.engine.stats(guild.id)).images, 6);
    const state = await restarted.settings.backfill(art);
    assert.equal(state?.messages, 120);
    assert.equal(state?.images, 6, 'images a killed run had indexed count as read');
  });

  test('live posts in watched channels are indexed once; deletions of messages, channels and the guild remove them', async () => {
    const world = await startBotWorld();
    worlds.push(world);
    const { fake } = world;
    const photos = await referencePhotoPaths();
    const { guild } = fake.addGuild();
    const painter = fake.addUser({ username: 'painter' }).id;
    fake.addMember(guild.id, painter);
    const art = fake.addChannel(guild.id, { name: 'art' }).id;
    const chat = fake.addChannel(guild.id, { name: 'chat' }).id;
    const sketches = fake.addChannel(guild.id, { name: 'sketches' }).id;
    for (const channel of [art, sketches]) await fake.waitForReply(watchCommand(world, guild.id, channel, guild.ownerId));
    const count = async () => (await world.engine.stats(guild.id)).images;

    const first = fake.postMessage({ channelId: art, authorId: painter, files: [{ filename: 'a.png', data: await readFile(photos[0]) }, { filename: 'b.jpg', data: await readFile(photos[7]) }] });
    // Indexed before its repost: the repost becomes the image's second reference.
    await waitFor('the first message indexed', async () => (await count()) === 2);
    fake.postMessage({ channelId: chat, authorId: painter, files: [{ filename: 'c.png', data: await readFile(photos[1]) }] });
    fake.postMessage({ channelId: art, authorId: painter, content: 'just words' });
    const repost = fake.postMessage({ channelId: art, authorId: painter, files: [{ filename: 'same.png', data: await readFile(photos[0]) }] });
    const bulk = [2, 3].map((i) => fake.postMessage({ channelId: art, authorId: painter, files: [{ filename: `${i}.png`, data: readFileSync(photos[i]) }] }));
    const sketch = fake.postMessage({ channelId: sketches, authorId: painter, files: [{ filename: 's.png', data: await readFile(photos[4]) }] });
    await waitFor('five images', async () => (await count()) === 5);
    await world.bot.idle();
    assert.equal(await count(), 5, 'the unwatched channel was not indexed, and the exact duplicate only as a second post');
    assert.equal((await world.engine.findByRef(repost.id, { namespace: guild.id })).length, 1);
    assert.ok(sketch.attachments.length === 1);

    fake.deleteMessage(first.id);
    // One of its images is still posted (the repost): only the other leaves.
    await waitFor('the deleted message’s own image gone', async () => (await count()) === 4);
    fake.bulkDeleteMessages(art, bulk.map((m) => m.id));
    await waitFor('bulk deletion', async () => (await count()) === 2);
    fake.deleteChannel(sketches);
    await waitFor('channel deletion', async () => (await count()) === 1);
    fake.deleteMessage(repost.id);
    await waitFor('the last post of the reposted image deleted', async () => (await count()) === 0);
    assert.deepEqual(await world.settings.watched(guild.id), [art]);

    fake.postMessage({ channelId: art, authorId: painter, files: [{ filename: 'late.png', data: await readFile(photos[5]) }] });
    await waitFor('a new image', async () => (await count()) === 1);
    fake.removeBotFromGuild(guild.id);
    await waitFor('the guild’s namespace dropped', async () => !(await world.engine.namespaces()).includes(guild.id));
    assert.deepEqual(await world.settings.watched(guild.id), []);
  });

  test('a guild retrains by itself at the threshold and says so; /retrain is for admins, forceable, one at a time', async () => {
    const world = await startBotWorld({
      engine: { vaeHyper: { epochs: 15, hidden: 128, latent: 16, seed: 7 } },
      env: { AUTO_RETRAIN: 'true', AUTO_RETRAIN_MIN_IMAGES: '117' },
    });
    worlds.push(world);
    const { fake } = world;
    const photos = await referencePhotoPaths();
    const { guild } = fake.addGuild();
    const painter = fake.addUser({ username: 'painter' }).id;
    fake.addMember(guild.id, painter);
    const art = fake.addChannel(guild.id, { name: 'art' }).id;
    await fake.waitForReply(watchCommand(world, guild.id, art, guild.ownerId));
    const botPosts = () => [...fake.state.messages.values()].filter((m) => m.channelId === art && m.authorId === fake.botUserId).map((m) => m.content);
    let posted = 0;
    for (const photo of photos) {
      for (const [i, bytes] of (await variants(photo, 9)).entries()) {
        fake.postMessage({ channelId: art, authorId: painter, files: [{ filename: `v${i}.png`, data: bytes }] });
        posted += 1;
      }
    }
    await waitFor('all variants indexed', async () => (await world.engine.stats(guild.id)).images === posted, 60_000);
    await waitFor('the automatic retrain’s notices', () => botPosts().some((c) => /^(Retrained on|Trained a new model)/.test(c)), 120_000);
    assert.ok(botPosts().some((c) => /enough images: I am training its own relevance model/.test(c)));
    const auto = await world.engine.stats(guild.id);

    const refused = await fake.waitForReply(fake.slashCommand({ guildId: guild.id, channelId: art, userId: painter, name: 'retrain' }));
    assert.match(JSON.stringify(refused.record.callbacks), /Manage Server/);

    const force = [{ name: 'force', type: ApplicationCommandOptionType.Boolean, value: true }];
    const started = await fake.waitForReply(fake.slashCommand({ guildId: guild.id, channelId: art, userId: guild.ownerId, name: 'retrain', options: force }));
    const second = await fake.waitForReply(fake.slashCommand({ guildId: guild.id, channelId: art, userId: guild.ownerId, name: 'retrain' }));
    const progressId = started.original!.id;
    await waitFor('the retrain summary', () => /^(Retrained on|Trained a new model|Retrain stopped)/.test(fake.state.messages.get(progressId)?.content ?? ''), 120_000);
    assert.match(fake.state.messages.get(second.original!.id)?.content ?? '', /already running/);
    const summary = fake.state.messages.get(progressId)!.content;
    assert.match(summary, /^Retrained on \d+ images/);
    // Forced or not, the key is the collection's own: its VAE, or a linear key the quality check chose (lw…, pca…).
    assert.match(summary, /After: model (vae|lw\d+|pca\d+)-/);
    assert.match(summary, /Quality check: /);
    const stats = await world.engine.stats(guild.id);
    assert.match(stats.key, /^(vae|lw\d+|pca\d+)-/);
    assert.notEqual(stats.key, auto.key, 'force switched to the new model');

    const id = world.relevant(guild.id, art, painter, await nearDuplicate(photos[2]));
    const reply = await fake.waitForReply(id);
    assert.ok(resultLinks(reply.original?.embeds as APIEmbed[]).length > 0, 'queries work with the new model');

    const status = await fake.waitForReply(fake.slashCommand({ guildId: guild.id, channelId: art, userId: painter, name: 'relevance-status' }));
    const text = JSON.stringify(status.record.callbacks.map((c) => c.body));
    assert.match(text, new RegExp(`Images indexed: ${posted}`));
    assert.match(text, /trained on \d+ images/);
  });
});
