import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import type { APIMessage } from 'discord-api-types/v10';
import { startBotWorld, messageLink, resultLinks, type BotWorld } from './helpers/bot-world.js';
import { nearDuplicate, referencePhotoPaths } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

/** Issue 11, item 5: what Discord no longer has is never shown from the store, and leaves it. */
describe('deleted and edited-away images leave the store', () => {
  let world: BotWorld;
  let photos: string[];
  let guild: string;
  let art: string;
  let quiet: string;
  let painter: string;
  before(async () => {
    world = await startBotWorld();
    photos = await referencePhotoPaths();
    const { fake } = world;
    const added = fake.addGuild({ name: 'Edits' });
    guild = added.guild.id;
    painter = fake.addUser({ username: 'painter' }).id;
    fake.addMember(guild, painter);
    art = fake.addChannel(guild, { name: 'art' }).id;
    quiet = fake.addChannel(guild, { name: 'not-watched' }).id;
    await world.settings.watch(guild, art);
  });
  after(() => world.stop());

  const refsOf = async (messageId: string) => (await world.engine.findByRef(messageId, { namespace: guild })).map((v) => v.extra?.imageKey).sort();

  test('an edit that removes an attachment removes its image; one that adds an attachment indexes it (watched channels only)', async () => {
    const { fake } = world;
    const posted = fake.postMessage({
      channelId: art,
      authorId: painter,
      files: [{ filename: 'a.png', data: await readFile(photos[0]) }, { filename: 'b.jpg', data: await readFile(photos[1]) }],
    });
    await waitFor('both images indexed', async () => (await refsOf(posted.id)).length === 2);
    const [first, second] = posted.attachments.map((a) => a.id);

    fake.editMessage(posted.id, { content: 'only one now', removeAttachmentIds: [first] });
    await waitFor('the removed attachment’s image to leave', async () => (await refsOf(posted.id)).length === 1);
    assert.deepEqual(await refsOf(posted.id), [second]);
    assert.equal((await world.engine.stats(guild)).images, 1);
    // The store changes before the handler logs what it removed: wait for the line rather than race it.
    await waitFor('the edit’s removal to be logged', () => world.logs.some((l) => l.includes(`message ${posted.id} edited: 1 image reference(s)`)));

    const edited = fake.editMessage(posted.id, { addFiles: [{ filename: 'c.jpg', data: await readFile(photos[2]) }] });
    const added = edited.attachments.at(-1)!.id;
    await waitFor('the added attachment indexed', async () => (await refsOf(posted.id)).length === 2);
    assert.deepEqual(await refsOf(posted.id), [second, added].sort());

    const elsewhere = fake.postMessage({ channelId: quiet, authorId: painter, content: 'text' });
    fake.editMessage(elsewhere.id, { addFiles: [{ filename: 'd.jpg', data: await readFile(photos[3]) }] });
    fake.editMessage(posted.id, { content: 'a text edit changes nothing' });
    await world.bot.idle();
    assert.deepEqual(await refsOf(elsewhere.id), [], 'an edit in a channel that is not watched indexes nothing');
    assert.deepEqual(await refsOf(posted.id), [second, added].sort());
  });

  test('a message deleted or edited while the bot could not see it is not shown, and is removed when Discord says so', async () => {
    const { fake } = world;
    const posts: APIMessage[] = [];
    for (const path of photos.slice(4, 8)) posts.push(fake.postMessage({ channelId: art, authorId: painter, files: [{ filename: 'p.png', data: await readFile(path) }] }));
    await waitFor('four images indexed', async () => (await Promise.all(posts.map((p) => refsOf(p.id)))).every((keys) => keys.length === 1));
    const [deleted, editedAway, kept] = posts;
    // Neither the bot nor its cache hears of these: as if they happened while it was offline.
    const channel = world.bot.client.channels.cache.get(art);
    if (channel?.isTextBased()) channel.messages.cache.clear();
    fake.deleteMessage(deleted.id, { dispatch: false });
    fake.editMessage(editedAway.id, { removeAttachmentIds: [editedAway.attachments[0].id], dispatch: false });
    assert.equal((await refsOf(deleted.id)).length, 1, 'still stored until Discord says otherwise');

    const reply = await fake.waitForReply(world.relevant(guild, art, painter, await nearDuplicate(photos[4])));
    const links = resultLinks(reply.original?.embeds);
    assert.ok(links.includes(messageLink(guild, art, kept.id)), 'live results are shown');
    assert.ok(!links.includes(messageLink(guild, art, deleted.id)), 'a deleted message is not shown');
    assert.ok(!links.includes(messageLink(guild, art, editedAway.id)), 'an attachment edited away is not shown');
    const shown = reply.original?.embeds?.[0];
    assert.ok(!shown?.url?.endsWith(deleted.id) && !shown?.url?.endsWith(editedAway.id));
    assert.deepEqual([await refsOf(deleted.id), await refsOf(editedAway.id)], [[], []], 'both left the store');
    assert.ok(world.logs.some((l) => l.includes(`message ${deleted.id} in channel ${art} no longer exists`)));
    assert.ok(world.logs.some((l) => l.includes(`message ${editedAway.id} no longer carries image`)));
    const fetched = fake.requests.filter((r) => r.method === 'GET' && r.params.messageId === deleted.id);
    assert.deepEqual(fetched.map((r) => r.status), [404], 'the bot learnt it from 10008 Unknown Message');
  });
});
