import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { ApplicationCommandOptionType, OverwriteType, PermissionFlagsBits } from 'discord.js';
import type { APIEmbed } from 'discord-api-types/v10';
import { messageLink, resultLinks, startBotWorld, type BotWorld } from './helpers/bot-world.js';
import { nearDuplicate, referencePhotoPaths } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

describe('Discord faults: the bot stays up, loses nothing, and still answers', () => {
  let world: BotWorld;
  let photos: string[];
  let guildId: string;
  let ownerId: string;
  let painter: string;
  const count = async () => (await world.engine.stats(guildId)).images;
  const watch = (channelId: string) =>
    world.fake.waitForReply(
      world.fake.slashCommand({ guildId, channelId, userId: ownerId, name: 'watch', options: [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: channelId }] }),
    );

  before(async () => {
    photos = await referencePhotoPaths();
    world = await startBotWorld();
    const { guild } = world.fake.addGuild();
    guildId = guild.id;
    ownerId = guild.ownerId;
    painter = world.fake.addUser({ username: 'painter' }).id;
    world.fake.addMember(guildId, painter);
  });
  after(() => world?.stop());

  test('a backfill through a global 429 storm, 5xx bursts and a non-resumable session loss indexes every image once', async () => {
    const { fake } = world;
    const channel = fake.addChannel(guildId, { name: 'history' }).id;
    const start = Date.now() - 300 * 60_000;
    for (let i = 0; i < 300; i++) {
      const photo = i % 25 === 0 ? photos[(i / 25) % photos.length] : undefined;
      fake.postMessage({
        channelId: channel,
        authorId: painter,
        content: `m${i}`,
        files: photo ? [{ filename: `h${i}.png`, data: await readFile(photo) }] : [],
        timestamp: new Date(start + i * 60_000),
        dispatch: false,
      });
    }
    fake.faults.rest.rateLimit({ method: 'GET', route: '/channels/:channelId/messages' }, { retryAfter: 0.2, global: true, times: 3 });
    fake.faults.rest.serverError({ method: 'GET', route: '/channels/:channelId/messages' }, { status: 502, times: 2 });
    await watch(channel);
    fake.faults.gateway.invalidateSessions(false);
    await waitFor('the backfill', async () => (await world.settings.backfill(channel))?.done === true, 60_000);
    assert.equal(await count(), 12, 'every image once (12 distinct photos in 300 messages)');
    assert.ok(fake.requests.some((r) => r.status === 429) && fake.requests.some((r) => r.status === 502));
  });

  test('an attachment URL that fails or has expired is skipped with a logged reason; later posts still index', async () => {
    const { fake } = world;
    const channel = fake.addChannel(guildId, { name: 'live' }).id;
    await watch(channel);
    const before = await count();
    fake.faults.cdn.failNext(10, 404);
    fake.postMessage({ channelId: channel, authorId: painter, files: [{ filename: 'gone.png', data: await readFile(photos[12]) }] });
    await waitFor('the skip to be logged', () => world.logs.some((l) => /skipped: The image is no longer available/.test(l)));
    assert.equal(await count(), before);
    fake.faults.cdn.failNext(2, 503);
    const posted = fake.postMessage({ channelId: channel, authorId: painter, files: [{ filename: 'retry.png', data: await readFile(photos[12]) }] });
    await waitFor('the retried download to be indexed', async () => (await count()) === before + 1);

    const id = world.relevant(guildId, channel, painter, await nearDuplicate(photos[12]));
    const reply = await fake.waitForReply(id);
    assert.equal(resultLinks(reply.original?.embeds as APIEmbed[])[0], messageLink(guildId, channel, posted.id));
  });

  test('a channel the bot may not read is refused by /watch with what is missing, and nothing else breaks', async () => {
    const { fake } = world;
    const botRole = [...fake.state.roles.values()].find((r) => r.guildId === guildId && r.name === 'Bot')!;
    const locked = fake.addChannel(guildId, {
      name: 'locked',
      overwrites: [{ id: botRole.id, type: OverwriteType.Role, allow: '0', deny: PermissionFlagsBits.ReadMessageHistory.toString() }],
    }).id;
    fake.postMessage({ channelId: locked, authorId: painter, files: [{ filename: 'x.png', data: await readFile(photos[3]) }], dispatch: false });
    const refusal = await watch(locked);
    assert.match(refusal.original?.content ?? '', /^I cannot watch .*missing Read Message History/);
    assert.equal(await world.settings.isWatched(guildId, locked), false);
    const id = world.relevant(guildId, locked, painter, await nearDuplicate(photos[0]));
    const reply = await fake.waitForReply(id);
    assert.ok(reply.original, 'the bot still answers');
  });
});
