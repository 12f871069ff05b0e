import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationCommandOptionType } from 'discord.js';
import type { APIEmbed, APIMessage } from 'discord-api-types/v10';
import { nearDuplicate, referencePhotoPaths } from './helpers/fixtures.js';
import { addArtClub, messageLink, resultLinks, startBotWorld, type BotWorld } from './helpers/bot-world.js';
import { waitFor } from './helpers/wait.js';

describe('the bot answers /relevant through a real discord.js client and a local fake Discord', () => {
  let world: BotWorld;
  let photos: Record<string, string>;
  const ids = { guild: '', other: '', art: '', staff: '', nsfw: '', otherArt: '', painter: '', staffer: '', owner: '' };
  const posted: Record<string, APIMessage> = {};

  async function post(channelId: string, name: string, authorId = ids.painter): Promise<APIMessage> {
    const message = world.fake.postMessage({ channelId, authorId, files: [{ filename: name, data: await readFile(photos[name]) }] });
    posted[name] = message;
    return message;
  }

  async function ask(channelId: string, userId: string, image: Buffer, guildId = ids.guild) {
    const id = world.relevant(guildId, channelId, userId, image);
    const reply = await world.fake.waitForReply(id);
    const final = reply.followUps.at(-1) ?? reply.original;
    return { reply, links: resultLinks(final?.embeds as APIEmbed[] | undefined), message: final };
  }

  after(() => world?.stop());

  before(async () => {
    photos = Object.fromEntries((await referencePhotoPaths()).map((p) => [basename(p), p]));
    world = await startBotWorld();
    const { fake } = world;
    Object.assign(ids, addArtClub(fake));
    ids.nsfw = fake.addChannel(ids.guild, { name: 'after-dark', nsfw: true }).id;
    const b = fake.addGuild({ name: 'Other server' });
    ids.other = b.guild.id;
    fake.addMember(ids.other, ids.painter);
    ids.otherArt = fake.addChannel(ids.other, { name: 'art' }).id;

    for (const [guildId, channelId, owner] of [
      [ids.guild, ids.art, ids.owner],
      [ids.guild, ids.staff, ids.owner],
      [ids.guild, ids.nsfw, ids.owner],
      [ids.other, ids.otherArt, b.guild.ownerId],
    ]) {
      const id = fake.slashCommand({ guildId, channelId, userId: owner, name: 'watch', options: [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: channelId }] });
      const reply = await fake.waitForReply(id);
      assert.match(reply.original?.content ?? '', /Now indexing/);
    }
    for (const name of ['chelsea.png', 'owl.jpg', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png']) await post(ids.art, name);
    await post(ids.staff, 'dragonfly.png', ids.staffer);
    await post(ids.nsfw, 'bird.png');
    await post(ids.otherArt, 'hot_dog.jpg');
    await waitFor('eight images indexed', async () => (await world.engine.stats(ids.guild)).images === 7 && (await world.engine.stats(ids.other)).images === 1);
  });

  test('a resized, re-encoded copy of a posted image comes back first, with a collage and a result card', async () => {
    const { reply, links, message } = await ask(ids.art, ids.painter, await nearDuplicate(photos['chelsea.png']));
    assert.equal(links[0], messageLink(ids.guild, ids.art, posted['chelsea.png'].id));
    assert.ok(reply.record.ackLatencyMs !== null && reply.record.ackLatencyMs < 3000, 'deferred within Discord’s 3 s');
    const edit = reply.requests.find((r) => r.files.length > 0);
    assert.ok(edit, 'the answer carries files');
    assert.ok(edit.files.some((f) => f.filename === 'relevant.jpg' && f.data[0] === 0xff && f.data[1] === 0xd8));
    const card = (message?.embeds ?? [])[0];
    assert.match(card?.title ?? '', /^Result 1 of \d+ · score 0\.\d{3}$/);
    assert.equal(card?.url, links[0]);
    assert.ok(card?.image?.url, 'the card shows the image');
    console.log(`# ack ${reply.record.ackLatencyMs} ms, final answer ${reply.record.replyLatencyMs} ms`);
  });

  test('the query image itself never appears among its results', async () => {
    const { links } = await ask(ids.art, ids.painter, await readFile(photos['owl.jpg']));
    assert.ok(links.length > 0);
    assert.ok(!links.includes(messageLink(ids.guild, ids.art, posted['owl.jpg'].id)));
  });

  test('a member who cannot read a private channel never sees its images; one who can, does', async () => {
    const query = await nearDuplicate(photos['dragonfly.png']);
    const privateLink = messageLink(ids.guild, ids.staff, posted['dragonfly.png'].id);
    const painter = await ask(ids.art, ids.painter, query);
    assert.ok(!painter.links.includes(privateLink));
    for (const request of painter.reply.requests) assert.ok(!JSON.stringify(request.body ?? {}).includes(`/${ids.staff}/`), 'no request mentions the private channel');
    const staffer = await ask(ids.staff, ids.staffer, query);
    assert.equal(staffer.links[0], privateLink);
  });

  test('a private channel’s images asked for in a public channel are answered privately', async () => {
    const id = world.relevant(ids.guild, ids.art, ids.staffer, await nearDuplicate(photos['dragonfly.png']));
    const reply = await world.fake.waitForReply(id, { until: (r) => r.followUps.length > 0 });
    const links = resultLinks(reply.followUps[0].embeds as APIEmbed[]);
    assert.match(reply.original?.content ?? '', /only to you/);
    assert.equal(reply.followUps.length, 1);
    assert.equal(links[0], messageLink(ids.guild, ids.staff, posted['dragonfly.png'].id));
    assert.ok(((reply.followUps[0].flags ?? 0) & 64) !== 0, 'the follow-up is ephemeral');
  });

  test('age-restricted images only appear when asked in an age-restricted channel', async () => {
    const query = await nearDuplicate(photos['bird.png']);
    const nsfwLink = messageLink(ids.guild, ids.nsfw, posted['bird.png'].id);
    assert.ok(!(await ask(ids.art, ids.painter, query)).links.includes(nsfwLink));
    assert.equal((await ask(ids.nsfw, ids.painter, query)).links[0], nsfwLink);
  });

  test('no result crosses guilds', async () => {
    const query = await nearDuplicate(photos['hot_dog.jpg']);
    const inA = await ask(ids.art, ids.painter, query);
    assert.ok(inA.links.every((l) => l.includes(`/channels/${ids.guild}/`)));
    const inB = await ask(ids.otherArt, ids.painter, query, ids.other);
    assert.deepEqual(inB.links, [messageLink(ids.other, ids.otherArt, posted['hot_dog.jpg'].id)]);
  });

  test('the context menu searches with a message’s image', async () => {
    const id = world.fake.messageCommand({ guildId: ids.guild, channelId: ids.art, userId: ids.painter, name: 'Find relevant images', targetMessageId: posted['rocket.jpg'].id });
    const reply = await world.fake.waitForReply(id);
    const links = resultLinks(reply.original?.embeds as APIEmbed[]);
    assert.ok(links.length >= 3);
    assert.ok(!links.includes(messageLink(ids.guild, ids.art, posted['rocket.jpg'].id)));
  });

  test('replying to an image with a mention of the bot answers in the channel', async () => {
    const mention = world.fake.postMessage({ channelId: ids.art, authorId: ids.painter, content: `<@${world.fake.botUserId}> more like this?`, mentionIds: [world.fake.botUserId], replyTo: posted['owl.jpg'].id });
    await waitFor('the bot’s reply', () => [...world.fake.state.messages.values()].some((m) => m.authorId === world.fake.botUserId && m.referencedMessageId === mention.id));
    const answer = [...world.fake.state.messages.values()].find((m) => m.authorId === world.fake.botUserId && m.referencedMessageId === mention.id)!;
    const links = resultLinks(world.fake.serialize(answer).embeds as APIEmbed[]);
    assert.ok(links.length > 0);
    assert.ok(!links.includes(messageLink(ids.guild, ids.art, posted['owl.jpg'].id)), 'the image replied to is the query');
    assert.ok(links.every((l) => !l.includes(`/${ids.staff}/`) && !l.includes(`/${ids.nsfw}/`)));
  });

  test('reactions page through results and 🔎 searches again; only the asker’s reactions act', async () => {
    const { message } = await ask(ids.art, ids.painter, await nearDuplicate(photos['chelsea.png']));
    assert.ok(message);
    const messageId = message.id;
    await waitFor('the four controls', () => (world.fake.state.messages.get(messageId)?.reactions.size ?? 0) >= 4);
    const edits = () => world.fake.requests.filter((r) => r.method === 'PATCH' && r.path.includes(`/messages/${messageId}`));
    const title = () => (world.fake.serialize(world.fake.state.messages.get(messageId)!).embeds?.[0]?.title ?? '');

    world.fake.addReaction(ids.art, messageId, ids.staffer, '➡️');
    world.fake.addReaction(ids.art, messageId, ids.painter, '➡️');
    await waitFor('the page turn', () => /^Result 2 of/.test(title()));
    await waitFor('the asker’s reaction removed', () =>
      world.fake.requests.some((r) => r.method === 'DELETE' && r.path.includes(`/messages/${messageId}/reactions/`) && r.path.endsWith(`/${ids.painter}`)),
    );
    assert.equal(edits().length, 1, 'the other member’s reaction did nothing');

    world.fake.addReaction(ids.art, messageId, ids.painter, '⬅️');
    await waitFor('back to the first', () => /^Result 1 of/.test(title()));

    const before = resultLinks(world.fake.serialize(world.fake.state.messages.get(messageId)!).embeds as APIEmbed[]);
    world.fake.addReaction(ids.art, messageId, ids.painter, '🔎');
    await waitFor('a new search', () => edits().length === 3);
    const after = resultLinks(world.fake.serialize(world.fake.state.messages.get(messageId)!).embeds as APIEmbed[]);
    assert.ok(!after.includes(before[0]), 'the shown result is now the query, so it is not among the results');

    world.fake.addReaction(ids.art, messageId, ids.painter, '❌');
    await waitFor('the message closed', () => !world.fake.state.messages.has(messageId));
  });

  test('deleting a message removes its image from results', async () => {
    const coffee = posted['coffee.png'];
    world.fake.deleteMessage(coffee.id);
    await waitFor('coffee removed', async () => (await world.engine.stats(ids.guild)).images === 6);
    const { links } = await ask(ids.art, ids.painter, await nearDuplicate(photos['coffee.png']));
    assert.ok(!links.includes(messageLink(ids.guild, ids.art, coffee.id)));
  });

  test('a 429 with Retry-After and a gateway drop in the middle of a flow do not lose the answer', async () => {
    world.fake.faults.rest.rateLimit({ method: 'PATCH', path: /\/messages\/(@|%40)original/ }, { retryAfter: 0.3, times: 1 });
    const limited = await ask(ids.art, ids.painter, await nearDuplicate(photos['owl.jpg']));
    assert.equal(limited.links[0], messageLink(ids.guild, ids.art, posted['owl.jpg'].id));
    assert.ok(limited.reply.requests.some((r) => r.status === 429));

    await world.fake.faults.gateway.disconnect(4000);
    const query = await nearDuplicate(photos['motorcycle_left.png']);
    const id = world.relevant(ids.guild, ids.art, ids.painter, query);
    await world.fake.waitForResume();
    const reply = await world.fake.waitForReply(id);
    assert.equal(resultLinks(reply.original?.embeds as APIEmbed[])[0], messageLink(ids.guild, ids.art, posted['motorcycle_left.png'].id));
  });
});
