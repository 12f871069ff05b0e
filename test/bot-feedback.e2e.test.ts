/**
 * Relevance feedback through discord.js against the fake Discord: 👍/👎 as reactions on public answers and as buttons
 * on private ones re-rank the answer at once, with judged results marked; a public answer's re-ranking never shows
 * an image the channel's audience cannot read (and, with that check switched off, it would: the situation needs
 * it); judgements leave with the image and with /forget-me of the asker.
 */
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { ApplicationCommandOptionType } from 'discord.js';
import type { APIEmbed, APIMessage } from 'discord-api-types/v10';
import { disablePrivacyChecksForTest } from '../src/bot/privacy-checks.js';
import { addArtClub, askRelevant, resultLinks, startBotWorld, type BotWorld } from './helpers/bot-world.js';
import { referencePhotoPaths, variants } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

describe('relevance feedback in chat', () => {
  let world: BotWorld;
  let guild: string;
  let insider: string;
  let poster: string;
  let lobby: string;
  let vault: string;
  /** The lobby photo a public answer is asked about (never indexed itself), and the owl. */
  let query: Buffer;
  let owlMessage: string;

  after(() => world?.stop());

  before(async () => {
    world = await startBotWorld();
    const { fake } = world;
    // The staffer reads the staff channel (the vault here); the painter posts every image.
    const club = addArtClub(fake);
    ({ guild, staffer: insider, painter: poster, art: lobby, staff: vault } = club);
    for (const channel of [lobby, vault]) await world.settings.watch(guild, channel);
    const photos = await referencePhotoPaths();
    const chelsea = photos.find((p) => basename(p) === 'chelsea.png')!;
    const owl = photos.find((p) => basename(p) === 'owl.jpg')!;
    query = (await variants(chelsea, 1))[0];
    for (const photo of photos) {
      const posted = fake.postMessage({ channelId: lobby, authorId: poster, files: [{ filename: basename(photo), data: await readFile(photo) }] });
      if (photo === owl) owlMessage = posted.id;
    }
    // Near-copies of the owl only the insiders can read: feedback towards the owl pulls them up.
    const owls = await variants(owl, 4);
    owls.forEach((data, i) => fake.postMessage({ channelId: vault, authorId: poster, files: [{ filename: `owl-${i}.png`, data }] }));
    await waitFor('every image indexed', async () => (await world.engine.stats(guild)).images === photos.length + owls.length);
  });

  const fromVault = (links: string[]) => links.filter((link) => link.split('/')[5] === vault);
  const embedsOf = (id: string) => world.fake.serialize(world.fake.state.messages.get(id)!).embeds as APIEmbed[];
  const overview = (id: string) => embedsOf(id)[1]?.description ?? '';
  const owlLink = () => `https://discord.com/channels/${guild}/${lobby}/${owlMessage}`;

  /** The insider replies to the query photo mentioning the bot: a public answer in the lobby (the vault left out). */
  async function publicAnswer(): Promise<string> {
    const { fake } = world;
    const target = fake.postMessage({ channelId: lobby, authorId: insider, files: [{ filename: 'q.png', data: query }], dispatch: false });
    const mention = fake.postMessage({ channelId: lobby, authorId: insider, content: `<@${fake.botUserId}>`, mentionIds: [fake.botUserId], replyTo: target.id });
    const reply = await fake.waitForRequest(
      (r) => r.method === 'POST' && r.params.channelId === lobby && (r.body as { message_reference?: { message_id: string } })?.message_reference?.message_id === mention.id,
    );
    const answerId = (reply.response as { id: string }).id;
    await fake.waitForRequest((r) => r.method === 'PUT' && r.path.includes(`/messages/${answerId}/reactions/`) && r.path.includes('%E2%9D%8C'));
    return answerId;
  }

  /** Reacts as `userId` and waits until the bot has handled it (it removes the asker's reaction, or does nothing). */
  async function react(answerId: string, userId: string, emoji: string): Promise<void> {
    const { fake } = world;
    const mark = fake.requests.length;
    fake.addReaction(lobby, answerId, userId, emoji);
    if (userId !== insider) {
      await world.bot.idle();
      return;
    }
    await fake.waitForRequest((r) => r.method === 'DELETE' && r.path.includes(`/messages/${answerId}/reactions/`) && fake.requests.indexOf(r) >= mark);
  }

  /** Turns the card to the owl (⬅️/➡️ until it shows); returns its rank now. */
  async function showOwl(answerId: string, next: () => Promise<void>): Promise<number> {
    for (let i = 0; i < 20 && embedsOf(answerId)[0].url !== owlLink(); i++) await next();
    assert.equal(embedsOf(answerId)[0].url, owlLink(), `the owl is among the results: ${resultLinks(embedsOf(answerId)).join(' ')} (${embedsOf(answerId)[0].title})`);
    return resultLinks(embedsOf(answerId)).indexOf(owlLink());
  }

  test('👍 on a public answer re-ranks it at once, marks the judged result, and stores the judgement', async () => {
    const answerId = await publicAnswer();
    const before = resultLinks(embedsOf(answerId));
    assert.deepEqual(fromVault(before), []);
    const owlRank = await showOwl(answerId, () => react(answerId, insider, '➡️'));
    assert.ok(owlRank > 0, `the owl should not already be first (rank ${owlRank})`);
    // Someone else's 👍 changes nothing.
    const mark = world.fake.requests.length;
    await react(answerId, world.fake.state.guilds.get(guild)!.ownerId, '👍');
    assert.equal(world.fake.requests.slice(mark).filter((r) => r.method === 'PATCH').length, 0, 'only the asker may judge');

    await react(answerId, insider, '👍');
    const after = resultLinks(embedsOf(answerId));
    assert.ok(after.indexOf(owlLink()) < owlRank, `the liked owl climbs: rank ${owlRank} → ${after.indexOf(owlLink())}`);
    assert.match(overview(answerId), new RegExp(`\\(${owlLink()}\\) 👍`), 'the liked result is marked');
    assert.notEqual(embedsOf(answerId)[0].url, owlLink(), 'the card moves on to a result not judged yet');
    assert.deepEqual(fromVault(after), [], 'a public answer never shows the vault');
    const judgements = await (await world.engine.feedback(guild)).all();
    assert.deepEqual(
      judgements.map((j) => [j.asker, j.sign, j.key, j.queryF16 !== undefined]),
      [[insider, 1, 'raw', true]],
      'stored with the asker, the sign, the key, and the features of the never-stored query',
    );
  });

  test('👍 on a public answer with the audience check off would show the vault (the re-ranking needs the check)', async () => {
    const answerId = await publicAnswer();
    await showOwl(answerId, () => react(answerId, insider, '➡️'));
    disablePrivacyChecksForTest(['audience-on-feedback']);
    try {
      await react(answerId, insider, '👍');
    } finally {
      disablePrivacyChecksForTest([]);
    }
    assert.ok(fromVault(resultLinks(embedsOf(answerId))).length > 0, 'expected vault images after 👍 without the check');
  });

  test('on a private answer, buttons judge: 👍 re-ranks and marks, and the answer may show what the asker reads', async () => {
    const { fake } = world;
    const id = askRelevant(fake, { guildId: guild, channelId: lobby, userId: insider, image: query, extra: [{ name: 'private', type: ApplicationCommandOptionType.Boolean, value: true }] });
    const answer = (await fake.waitForReply(id)).original as APIMessage;
    assert.ok(((answer.flags ?? 0) & 64) !== 0, 'a private answer');
    await waitFor('the browsing state', async () => (await world.settings.browse(answer.id)) !== undefined);
    const click = async (customId: string) => {
      await fake.waitForReply(fake.clickButton({ guildId: guild, channelId: lobby, userId: insider, messageId: answer.id, customId }));
    };
    const owlRank = await showOwl(answer.id, () => click('browse:next'));
    const vaultBefore = fromVault(resultLinks(embedsOf(answer.id))).length;
    assert.ok(vaultBefore > 0, 'a private answer shows what the asker reads');
    await click('judge:like');
    const after = resultLinks(embedsOf(answer.id));
    assert.ok(after.indexOf(owlLink()) < owlRank, `the liked owl climbs: rank ${owlRank} → ${after.indexOf(owlLink())}`);
    assert.match(overview(answer.id), new RegExp(`\\(${owlLink()}\\) 👍`));
    assert.match(embedsOf(answer.id)[0].footer?.text ?? '', /👍 👎 judge this one/);
    // Then 👎 on the card (a result not judged yet): stored as a dislike.
    await click('judge:dislike');
    const judgements = await (await world.engine.feedback(guild)).all();
    assert.equal(judgements.filter((j) => j.sign === -1).length, 1);
  });

  test('judgements leave with the judged image, and /forget-me takes all of the asker’s', async () => {
    const { fake } = world;
    const store = await world.engine.feedback(guild);
    const owlJudged = async () => (await store.all()).filter((j) => j.sign === 1).length;
    assert.ok((await owlJudged()) > 0);
    fake.deleteMessage(owlMessage);
    await waitFor('the owl’s judgements gone with it', async () => (await owlJudged()) === 0);
    assert.ok((await store.all()).length > 0, 'the 👎 of another image stays');
    const forget = await fake.waitForReply(fake.slashCommand({ guildId: guild, channelId: lobby, userId: insider, name: 'forget-me' }));
    assert.match(forget.original?.content ?? '', /your 👍\/👎/);
    assert.deepEqual(await store.all(), []);
  });
});
