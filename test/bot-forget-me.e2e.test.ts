import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { ApplicationCommandOptionType } from 'discord.js';
import { startBotWorld, type BotWorld } from './helpers/bot-world.js';
import { referencePhotoPaths } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

/** Issue 11, item 10: /forget-me lasts across every way an image can come back. */
describe('/forget-me is a lasting opt-out', () => {
  let world: BotWorld;
  let photos: string[];
  let guild: string;
  let owner: string;
  let art: string;
  let leaver: string;
  let stayer: string;
  before(async () => {
    world = await startBotWorld();
    photos = await referencePhotoPaths();
    const { fake } = world;
    const added = fake.addGuild({ name: 'Opt-out' });
    guild = added.guild.id;
    owner = added.guild.ownerId;
    leaver = fake.addUser({ username: 'leaver' }).id;
    stayer = fake.addUser({ username: 'stayer' }).id;
    fake.addMember(guild, leaver);
    fake.addMember(guild, stayer);
    art = fake.addChannel(guild, { name: 'art' }).id;
  });
  after(() => world.stop());

  const command = (name: string, userId: string, options: Array<{ name: string; type: ApplicationCommandOptionType; value: string }> = []) =>
    world.fake.waitForReply(world.fake.slashCommand({ guildId: guild, channelId: art, userId, name, options }));
  const authors = async () => {
    const out: string[] = [];
    for await (const view of world.engine.references({ namespace: guild })) out.push(view.extra?.authorId ?? '');
    return out.sort();
  };
  const post = async (authorId: string, photo: number, dispatch = true) =>
    world.fake.postMessage({ channelId: art, authorId, files: [{ filename: `p${photo}.png`, data: await readFile(photos[photo]) }], dispatch });

  test('no backfill, live post or edit brings the images back; /index-me undoes it; the command is rate-limited', async () => {
    const { fake } = world;
    await post(leaver, 0, false);
    await post(stayer, 1, false);
    const watch = await command('watch', owner, [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: art }]);
    assert.match(watch.original?.content ?? '', /Now indexing/);
    await waitFor('the backfill', async () => (await world.settings.backfill(art))?.done === true);
    assert.deepEqual(await authors(), [leaver, stayer].sort());

    const forget = await command('forget-me', leaver);
    assert.match(forget.original?.content ?? '', /Removed 1 image you posted/);
    assert.match(forget.original?.content ?? '', /This lasts/);
    assert.match(forget.original?.content ?? '', /\/index-me/);
    assert.deepEqual(await authors(), [stayer]);

    // History read again (unwatch + watch), a live post and an edit adding an image: none of the leaver's come back.
    await command('unwatch', owner, [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: art }]);
    await command('watch', owner, [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: art }]);
    await waitFor('the second backfill', async () => (await world.settings.backfill(art))?.done === true);
    const live = await post(leaver, 2);
    const text = fake.postMessage({ channelId: art, authorId: leaver, content: 'text first' });
    fake.editMessage(text.id, { addFiles: [{ filename: 'e.png', data: await readFile(photos[3]) }] });
    await post(stayer, 4);
    await waitFor('the stayer’s live post', async () => (await authors()).length === 2);
    await world.bot.idle();
    assert.deepEqual(await authors(), [stayer, stayer]);
    assert.ok(!world.logs.some((l) => l.startsWith('warn') && l.includes(live.id)), 'skipping an opted-out image is not a warning');

    // The scan of every guild is limited per person; the opt-out holds regardless.
    await command('forget-me', leaver);
    await command('forget-me', leaver);
    const limited = await command('forget-me', leaver);
    assert.match(JSON.stringify(limited.record.callbacks), /You used \/forget-me a moment ago/);
    assert.ok(await world.settings.isOptedOut(leaver));

    const undo = await command('index-me', leaver);
    assert.match(JSON.stringify(undo.record.callbacks), /indexed again/);
    await post(leaver, 5);
    await waitFor('the leaver’s new post indexed', async () => (await authors()).includes(leaver));
  });
});
