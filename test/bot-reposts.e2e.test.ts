import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationCommandOptionType } from 'discord.js';
import type { LoggedRequest } from '../harness/fake-discord/index.js';
import { addArtClub, messageLink, startBotWorld, type ArtClub, type BotWorld } from './helpers/bot-world.js';
import { lightRepost, REFERENCE_PHOTOS } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

/** Issue 12 part 2: repost notices in watched channels that ask for them, and /reposts on demand. */
describe('repost notices and /reposts', () => {
  let world: BotWorld;
  let club: ArtClub;
  /** Watched, repost notices off (the default). */
  let lounge: string;
  const photo = (name: string) => readFile(join(REFERENCE_PHOTOS, name));

  before(async () => {
    world = await startBotWorld();
    club = addArtClub(world.fake);
    lounge = world.fake.addChannel(club.guild, { name: 'lounge' }).id;
    const { fake } = world;
    const watch = (channelId: string, reposts?: string) =>
      fake.waitForReply(
        fake.slashCommand({
          guildId: club.guild,
          channelId,
          userId: club.owner,
          name: 'watch',
          options: [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: channelId }, ...(reposts ? [{ name: 'reposts', type: ApplicationCommandOptionType.String, value: reposts }] : [])],
        }),
      );
    assert.match((await watch(club.art, 'notify')).original?.content ?? '', /Repost notices: on/);
    await watch(club.staff, 'notify');
    await watch(lounge);
    await world.bot.idle();
  });
  after(() => world.stop());

  /** Posts an image and waits until it is indexed (and any notice for it has been sent). */
  const post = async (channelId: string, authorId: string, data: Buffer) => {
    const message = world.fake.postMessage({ channelId, authorId, files: [{ filename: 'art.png', data }] });
    await waitFor('the post indexed', async () => (await world.engine.findByRef(message.id, { namespace: club.guild })).length === 1);
    await world.bot.idle();
    return message;
  };
  /** The bot's replies to a message. */
  const repliesTo = (messageId: string) =>
    world.fake.requests.filter((r: LoggedRequest) => r.method === 'POST' && (r.body as { message_reference?: { message_id: string } } | undefined)?.message_reference?.message_id === messageId);
  const contentOf = (request: LoggedRequest) => (request.body as { content?: string }).content ?? '';
  const reposts = (channelId: string, userId: string, image: Buffer) => {
    const upload = world.fake.uploadAttachment(channelId, { filename: 'query.png', data: image, contentType: 'image/png' });
    return world.fake.slashCommand({
      guildId: club.guild,
      channelId,
      userId,
      name: 'reposts',
      options: [{ name: 'image', type: ApplicationCommandOptionType.Attachment, value: upload.id }],
    });
  };

  test('/watching shows which channels have repost notices', async () => {
    const reply = await world.fake.waitForReply(world.fake.slashCommand({ guildId: club.guild, channelId: club.art, userId: club.painter, name: 'watching' }));
    const content = reply.original?.content ?? '';
    assert.match(content, new RegExp(`<#${club.art}> \\(repost notices\\)`));
    assert.match(content, new RegExp(`<#${lounge}>(,|$)`), 'notices are off unless asked for');
  });

  test('an edited copy and the same file posted again each get one notice linking the earlier post', async () => {
    const first = await post(club.art, club.painter, await photo('astronaut.png'));
    assert.equal(repliesTo(first.id).length, 0, 'a first post is no repost');
    const edited = await post(club.art, club.staffer, await lightRepost(join(REFERENCE_PHOTOS, 'astronaut.png')));
    const notices = repliesTo(edited.id);
    assert.equal(notices.length, 1);
    assert.ok(contentOf(notices[0]).includes(messageLink(club.guild, club.art, first.id)), contentOf(notices[0]));
    assert.match(contentOf(notices[0]), /similarity 0\.99\d/);
    assert.deepEqual((notices[0].body as { allowed_mentions?: unknown }).allowed_mentions, { parse: [], replied_user: false }, 'a notice pings nobody');

    const same = await post(club.art, club.staffer, await photo('astronaut.png'));
    const again = repliesTo(same.id);
    assert.equal(again.length, 1);
    assert.ok(contentOf(again[0]).includes(`${messageLink(club.guild, club.art, first.id)} (the same file)`), contentOf(again[0]));
    assert.ok(contentOf(again[0]).includes(messageLink(club.guild, club.art, edited.id)), 'the edited copy is an earlier post too');
    assert.ok(!contentOf(again[0]).includes(same.id), 'never its own post');
  });

  test('no notice in a watched channel without repost notices', async () => {
    await post(lounge, club.painter, await photo('bird.png'));
    const copy = await post(lounge, club.painter, await lightRepost(join(REFERENCE_PHOTOS, 'bird.png')));
    const same = await post(lounge, club.painter, await photo('bird.png'));
    assert.equal(repliesTo(copy.id).length + repliesTo(same.id).length, 0);
  });

  test('no notice, and no link, when the earlier post is where the channel’s audience cannot read', async () => {
    // The staffer can read both channels; the painter reads #art but not #staff-art.
    const staffPost = await post(club.staff, club.staffer, await photo('motorcycle_left.png'));
    const copy = await post(club.art, club.staffer, await lightRepost(join(REFERENCE_PHOTOS, 'motorcycle_left.png')));
    const same = await post(club.art, club.staffer, await photo('motorcycle_left.png'));
    assert.equal(repliesTo(copy.id).length, 0, 'the copy in #art links nothing');
    // The same file's earlier post in #art (the copy is not the same file) is not there, so nothing at all.
    for (const reply of repliesTo(same.id)) assert.ok(!contentOf(reply).includes(club.staff), contentOf(reply));
    assert.ok(!world.fake.requests.some((r) => r.method === 'POST' && r.params.channelId === club.art && JSON.stringify(r.body ?? {}).includes(staffPost.id)), 'no request into #art names the staff post');
    // Posted again in #staff-art, whose audience reads the earlier post: noticed.
    const staffAgain = await post(club.staff, club.staffer, await lightRepost(join(REFERENCE_PHOTOS, 'motorcycle_left.png')));
    assert.ok(contentOf(repliesTo(staffAgain.id)[0] ?? ({ body: {} } as LoggedRequest)).includes(messageLink(club.guild, club.staff, staffPost.id)));
  });

  test('/reposts lists only posts the asker can read, privately when they would expose a channel', async () => {
    const image = await lightRepost(join(REFERENCE_PHOTOS, 'coffee.png'));
    const staffPost = await post(club.staff, club.staffer, await photo('coffee.png'));

    const painter = await world.fake.waitForReply(reposts(club.art, club.painter, image));
    assert.match(painter.original?.content ?? '', /Not posted before/);
    for (const request of painter.requests) assert.ok(!JSON.stringify(request.body ?? {}).includes(club.staff), 'nothing of the staff channel');

    const staffer = await world.fake.waitForReply(reposts(club.art, club.staffer, image), { until: (r) => r.followUps.length > 0 });
    assert.match(staffer.original?.content ?? '', /only to you/);
    assert.ok(!(staffer.original?.content ?? '').includes(club.staff));
    assert.ok(((staffer.followUps[0].flags ?? 0) & 64) !== 0, 'the list is ephemeral');
    assert.ok((staffer.followUps[0].content ?? '').includes(messageLink(club.guild, club.staff, staffPost.id)));

    // Asked in #staff-art, whose readers all read the post: answered in the channel.
    const inStaff = await world.fake.waitForReply(reposts(club.staff, club.staffer, image));
    assert.ok((inStaff.original?.content ?? '').includes(messageLink(club.guild, club.staff, staffPost.id)));
    assert.equal(((inStaff.original?.flags ?? 0) & 64) === 0, true);
  });
});
