import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationCommandOptionType } from 'discord.js';
import type { APIEmbed, APIMessage } from 'discord-api-types/v10';
import { addArtClub, messageLink, resultLinks, startBotWorld, type ArtClub, type BotWorld } from './helpers/bot-world.js';
import { nearDuplicate, referencePhotoPaths, variants } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

/**
 * Discord keeps an interaction's token for 15 minutes. An answer that comes later (a query stuck behind a slow
 * download, a long retrain) cannot use the interaction's webhook any more; the fake expires tokens on demand so
 * each case is reached without waiting.
 */
describe('answers that come after the interaction token expired still reach the member', () => {
  let world: BotWorld;
  let photos: Record<string, string>;
  let ids: ArtClub;
  const posted: Record<string, APIMessage> = {};
  /** Warnings and errors logged since `mark` (an index into the log). */
  const problems = (mark: number) => world.logs.slice(mark).filter((line) => /^(warn|error) /.test(line));

  /** Messages the bot posted in a channel itself (not as an interaction's response) since `since` was taken. */
  const newBotMessages = (channelId: string, since: Set<string>): APIMessage[] =>
    [...world.fake.state.messages.values()]
      .filter((m) => m.channelId === channelId && m.authorId === world.fake.botUserId && m.interactionId === null && !since.has(m.id))
      .map((m) => world.fake.serialize(m));
  const snapshot = () => new Set(world.fake.state.messages.keys());

  /** Asks /relevant and lets the query's download finish only once the interaction's token has expired. */
  async function askLate(channelId: string, userId: string, image: Buffer, extra: Parameters<BotWorld['relevant']>[4] = []): Promise<string> {
    const hold = world.fake.faults.cdn.holdNext(1);
    const id = world.relevant(ids.guild, channelId, userId, image, extra);
    await hold.reached;
    world.fake.expireInteractionToken(id);
    hold.release();
    return id;
  }

  const refusedWebhookCalls = (id: string) => world.fake.reply(id).requests.filter((r) => r.status === 401 && (r.response as { code?: number }).code === 50027);

  before(async () => {
    photos = Object.fromEntries((await referencePhotoPaths()).map((p) => [basename(p), p]));
    world = await startBotWorld({ engine: { vaeHyper: { epochs: 15, hidden: 128, latent: 16, seed: 7 } } });
    const { fake } = world;
    ids = addArtClub(fake);
    for (const channelId of [ids.art, ids.staff]) {
      await fake.waitForReply(
        fake.slashCommand({ guildId: ids.guild, channelId, userId: ids.owner, name: 'watch', options: [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: channelId }] }),
      );
    }
    const post = async (channelId: string, name: string, authorId: string) => {
      posted[name] = fake.postMessage({ channelId, authorId, files: [{ filename: name, data: await readFile(photos[name]) }] });
    };
    for (const name of ['chelsea.png', 'owl.jpg', 'coffee.png', 'rocket.jpg']) await post(ids.art, name, ids.painter);
    await post(ids.staff, 'dragonfly.png', ids.staffer);
    await waitFor('five images indexed', async () => (await world.engine.stats(ids.guild)).images === 5);
    await world.bot.idle();
  });
  after(() => world?.stop());

  test('a public answer is posted in the channel, addressed to the asker, and browses with reactions', async () => {
    const mark = world.logs.length;
    const since = snapshot();
    const id = await askLate(ids.art, ids.painter, await nearDuplicate(photos['chelsea.png']));
    await waitFor('the answer in the channel', () => newBotMessages(ids.art, since).some((m) => (m.embeds?.length ?? 0) > 0));
    const [answer] = newBotMessages(ids.art, since);
    assert.match(answer.content, new RegExp(`^<@${ids.painter}> The \\d+ most relevant images`));
    assert.equal(resultLinks(answer.embeds as APIEmbed[])[0], messageLink(ids.guild, ids.art, posted['chelsea.png'].id));
    assert.ok(refusedWebhookCalls(id).length > 0, 'the interaction reply was tried first');
    const sent = world.fake.requests.find((r) => r.method === 'POST' && r.response && (r.response as APIMessage).id === answer.id);
    assert.deepEqual((sent?.body as { allowed_mentions?: unknown }).allowed_mentions, { users: [ids.painter] }, 'only the asker is pinged');

    await waitFor('the four controls', () => (world.fake.state.messages.get(answer.id)?.reactions.size ?? 0) >= 4);
    world.fake.addReaction(ids.art, answer.id, ids.painter, '➡️');
    await waitFor('the page turn', () => /^Result 2 of/.test(world.fake.serialize(world.fake.state.messages.get(answer.id)!).embeds?.[0]?.title ?? ''));
    assert.deepEqual(problems(mark), []);
    assert.ok(world.logs.some((line) => line.startsWith('info ') && line.includes(id) && /token expired/.test(line)));
  });

  test('an answer whose token has expired since continues browsing in a new message addressed to the asker', async () => {
    const mark = world.logs.length;
    const { fake } = world;
    const id = world.relevant(ids.guild, ids.art, ids.painter, await nearDuplicate(photos['owl.jpg']));
    const answer = (await fake.waitForReply(id)).original!;
    await waitFor('the four controls', () => (fake.state.messages.get(answer.id)?.reactions.size ?? 0) >= 4);
    fake.expireInteractionToken(id);
    const since = snapshot();
    fake.addReaction(ids.art, answer.id, ids.painter, '➡️');
    await waitFor('the page in a new message', () => newBotMessages(ids.art, since).some((m) => /^Result 2 of/.test(m.embeds?.[0]?.title ?? '')));
    const [moved] = newBotMessages(ids.art, since);
    assert.match(moved.content, new RegExp(`^<@${ids.painter}> The \\d+ most relevant images`));
    assert.match(fake.serialize(fake.state.messages.get(answer.id)!).embeds?.[0]?.title ?? '', /^Result 1 of/, 'the expired reply is left as it was');
    assert.ok(refusedWebhookCalls(id).length > 0, 'the interaction webhook was tried first');
    await waitFor('the four controls on the new message', () => (fake.state.messages.get(moved.id)?.reactions.size ?? 0) >= 4);
    // The new message is an ordinary one: browsing goes on there, edited in place.
    fake.addReaction(ids.art, moved.id, ids.painter, '➡️');
    await waitFor('the next page turn', () => /^Result 3 of/.test(fake.serialize(fake.state.messages.get(moved.id)!).embeds?.[0]?.title ?? ''));
    fake.addReaction(ids.art, answer.id, ids.painter, '➡️');
    await world.bot.idle();
    assert.equal(newBotMessages(ids.art, since).length, 1, 'the old reply no longer browses');
    assert.deepEqual(fake.channelEditsOfInteractionResponses, []);
    assert.deepEqual(problems(mark), []);
  });

  test('buttons on a private answer still work after that answer’s token expired', async () => {
    const mark = world.logs.length;
    const id = world.relevant(ids.guild, ids.art, ids.painter, await nearDuplicate(photos['rocket.jpg']), [{ name: 'private', type: ApplicationCommandOptionType.Boolean, value: true }]);
    const answer = (await world.fake.waitForReply(id)).original!;
    assert.ok(((answer.flags ?? 0) & 64) !== 0 && (answer.components?.length ?? 0) > 0, 'an ephemeral answer with buttons');
    // The browsing state is saved just after the answer is sent: a click before that would find nothing to browse.
    await waitFor('the browsing state', async () => (await world.settings.browse(answer.id)) !== undefined);
    world.fake.expireInteractionToken(id);
    const click = world.fake.clickButton({ guildId: ids.guild, channelId: ids.art, userId: ids.painter, messageId: answer.id, customId: 'browse:next' });
    await world.fake.waitForReply(click);
    assert.match(world.fake.serialize(world.fake.state.messages.get(answer.id)!).embeds?.[0]?.title ?? '', /^Result 2 of/);
    assert.deepEqual(problems(mark), []);
  });

  test('a private answer is never posted publicly; the log says why it was lost', async () => {
    const mark = world.logs.length;
    const since = snapshot();
    const id = await askLate(ids.art, ids.painter, await nearDuplicate(photos['coffee.png']), [{ name: 'private', type: ApplicationCommandOptionType.Boolean, value: true }]);
    await waitFor('the reason logged', () => problems(mark).length > 0);
    assert.equal(problems(mark).length, 1);
    assert.match(problems(mark)[0], new RegExp(`^warn interaction ${id}.*private answer.*lost.*token expired`));
    await world.bot.idle();
    assert.deepEqual(newBotMessages(ids.art, since), []);
    assert.ok(refusedWebhookCalls(id).length > 0);
  });

  test('results from a channel not everyone can read are not posted publicly; the asker is told to search again', async () => {
    const mark = world.logs.length;
    const since = snapshot();
    const id = await askLate(ids.art, ids.staffer, await nearDuplicate(photos['dragonfly.png']));
    await waitFor('the note in the channel', () => newBotMessages(ids.art, since).length > 0);
    const [note] = newBotMessages(ids.art, since);
    assert.match(note.content, new RegExp(`^<@${ids.staffer}> .*only to you.*search again`, 's'));
    assert.deepEqual(note.embeds ?? [], []);
    assert.ok(!JSON.stringify(world.fake.requests.filter((r) => r.status < 400 && r.method !== 'GET').map((r) => r.body)).includes(`/${ids.staff}/${posted['dragonfly.png'].id}`));
    assert.ok(refusedWebhookCalls(id).length > 0);
    assert.deepEqual(problems(mark), []);
  });

  test('an error found after the token expired is told in the channel', async () => {
    const mark = world.logs.length;
    const since = snapshot();
    const id = await askLate(ids.art, ids.painter, Buffer.from('not an image at all, though it claims to be a PNG'));
    await waitFor('the error in the channel', () => newBotMessages(ids.art, since).length > 0);
    const [told] = newBotMessages(ids.art, since);
    assert.match(told.content, new RegExp(`^<@${ids.painter}> \\S`));
    assert.ok(refusedWebhookCalls(id).length > 0);
    assert.deepEqual(problems(mark), []);
  });

  test('a /retrain that outlasts its token reports its progress and summary in a new message to the admin, and logs nothing alarming', async () => {
    const mark = world.logs.length;
    const { fake } = world;
    const { guild } = fake.addGuild({ name: 'Big club' });
    const gallery = fake.addChannel(guild.id, { name: 'gallery' }).id;
    let seeded = 0;
    for (const path of Object.values(photos)) {
      for (const [i, bytes] of (await variants(path, 9)).entries()) {
        const { status } = await world.engine.index(bytes, { namespace: guild.id, source: `${basename(path)}#${i}` });
        if (status === 'indexed') seeded += 1;
      }
    }
    const id = fake.slashCommand({ guildId: guild.id, channelId: gallery, userId: guild.ownerId, name: 'retrain', options: [{ name: 'force', type: ApplicationCommandOptionType.Boolean, value: true }] });
    const { token } = fake.reply(id).record;
    // The bot reads its reply once to get the message it then edits; the token expires right after.
    await fake.waitForRequest((r) => r.method === 'GET' && r.params.token === token && r.status === 200);
    fake.expireInteractionToken(id);
    const replyId = fake.reply(id).record.originalMessageId!;
    const since = snapshot();
    const progress = () => newBotMessages(gallery, since)[0];
    await waitFor('the summary', () => /^<@\d+> (Retrained on|Trained a new model|Retrain stopped)/.test(progress()?.content ?? ''), 120_000);
    assert.match(progress().content, new RegExp(`^<@${guild.ownerId}> Retrained on \\d+ images`));
    assert.equal(newBotMessages(gallery, since).length, 1, 'one new message, edited with each report');
    assert.equal((await world.engine.stats(guild.id)).images, seeded);

    const { tokenExpiresAt } = fake.reply(id).record;
    assert.deepEqual(fake.requests.filter((r) => r.method === 'PATCH' && r.params.messageId === replyId && r.at > tokenExpiresAt), [], 'the expired reply is not edited');
    const edits = fake.requests.filter((r) => r.method === 'PATCH' && r.params.messageId === progress().id);
    assert.ok(edits.every((r) => r.status === 200 && r.route === '/channels/:channelId/messages/:messageId'));
    assert.ok(edits.length > 0 && edits.at(-1)!.at > tokenExpiresAt, 'the summary edits the new message');
    assert.deepEqual(fake.channelEditsOfInteractionResponses, []);
    assert.deepEqual(problems(mark), []);
  });
});
