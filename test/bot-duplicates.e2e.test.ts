import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { messageLink, resultLinks, startArtClubWorld, type ArtClub, type BotWorld } from './helpers/bot-world.js';
import { nearDuplicate, referencePhotoPaths } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

/** Issue 11, item 7: the same file posted in two channels is one image with two posts, each found and removed on its own. */
describe('identical files in two posts', () => {
  let world: BotWorld;
  let club: ArtClub;
  let photos: string[];
  before(async () => {
    ({ world, club } = await startArtClubWorld());
    photos = await referencePhotoPaths();
  });
  after(() => world.stop());

  const ask = async (channelId: string, userId: string, path: string) => {
    const reply = await world.fake.waitForReply(world.relevant(club.guild, channelId, userId, await nearDuplicate(path)));
    return { links: resultLinks(reply.original?.embeds), card: reply.original?.embeds?.[0], content: reply.original?.content ?? '' };
  };

  test('each post is a reference: found through the one the asker can read, removed one at a time', async () => {
    const { fake } = world;
    const bytes = await readFile(photos[0]);
    // The staff post comes first: before references, the public post was merged into it and lost.
    const staffPost = fake.postMessage({ channelId: club.staff, authorId: club.staffer, files: [{ filename: 'x.png', data: bytes }] });
    await waitFor('the staff post indexed', async () => (await world.engine.findByRef(staffPost.id, { namespace: club.guild })).length === 1);
    const publicPost = fake.postMessage({ channelId: club.art, authorId: club.painter, files: [{ filename: 'x-again.png', data: bytes }] });
    const other = fake.postMessage({ channelId: club.art, authorId: club.painter, files: [{ filename: 'y.png', data: await readFile(photos[1]) }] });
    await waitFor('the public posts indexed', async () => (await world.engine.findByRef(other.id, { namespace: club.guild })).length === 1);
    await world.bot.idle();
    assert.equal((await world.engine.stats(club.guild)).images, 2, 'one feature row per content');
    const [view] = await world.engine.findByRef(publicPost.id, { namespace: club.guild });
    assert.deepEqual((await world.engine.get(view.id, { namespace: club.guild }))?.refs.map((r) => r.extra?.messageId), [staffPost.id, publicPost.id]);

    // The painter cannot read the staff channel: the image is found through the public post, and the card says so.
    const painterSees = await ask(club.art, club.painter, photos[0]);
    assert.equal(painterSees.links[0], messageLink(club.guild, club.art, publicPost.id));
    assert.equal(painterSees.card?.url, messageLink(club.guild, club.art, publicPost.id));
    assert.ok(!JSON.stringify(painterSees.card).includes(club.staff), 'nothing of the staff post is shown');
    assert.ok(!painterSees.content.includes('only to you'), 'answered publicly: the public post exposes nothing');

    // Deleting the first (staff) post keeps the image for the public one.
    fake.deleteMessage(staffPost.id);
    await waitFor('the staff reference removed', async () => (await world.engine.findByRef(staffPost.id, { namespace: club.guild })).length === 0);
    assert.equal((await world.engine.stats(club.guild)).images, 2);
    assert.equal((await ask(club.art, club.painter, photos[0])).links[0], messageLink(club.guild, club.art, publicPost.id));

    // A second staff post, then the public post goes: the staffer still finds it, through the staff post; the painter does not.
    const staffAgain = fake.postMessage({ channelId: club.staff, authorId: club.staffer, files: [{ filename: 'x.png', data: bytes }] });
    await waitFor('the new staff post indexed', async () => (await world.engine.findByRef(staffAgain.id, { namespace: club.guild })).length === 1);
    fake.deleteMessage(publicPost.id);
    await waitFor('the public reference removed', async () => (await world.engine.findByRef(publicPost.id, { namespace: club.guild })).length === 0);
    assert.ok(!(await ask(club.art, club.painter, photos[0])).links.some((l) => l.includes(staffAgain.id)), 'no readable post left for the painter');
    const stafferSees = await ask(club.staff, club.staffer, photos[0]);
    assert.equal(stafferSees.links[0], messageLink(club.guild, club.staff, staffAgain.id));

    // The last post's author uses /forget-me: now the image itself goes.
    const forget = await fake.waitForReply(fake.slashCommand({ guildId: club.guild, channelId: club.staff, userId: club.staffer, name: 'forget-me' }));
    assert.match(forget.original?.content ?? '', /Removed 1 image/);
    assert.equal((await world.engine.stats(club.guild)).images, 1);
    assert.equal(await world.engine.get(view.id, { namespace: club.guild }), undefined);
  });
});
