import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { startFakeDiscord, type FakeDiscord } from '../harness/fake-discord/index.js';
import { startBotWorld, type BotWorld } from './helpers/bot-world.js';
import { referencePhotoPaths } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

/** Issue 11, item 11: what was left or deleted while the bot was offline does not keep its data. */
describe('start-up reconciles the store with the guilds and channels that still exist', () => {
  let world: BotWorld | undefined;
  let fake: FakeDiscord | undefined;
  let dataDir: string | undefined;
  after(async () => {
    await world?.stop();
    await fake?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  test('a guild left and channels and a thread deleted while offline lose their images and settings at the next start, logged', async () => {
    const photos = await referencePhotoPaths();
    dataDir = await mkdtemp(join(tmpdir(), 'relevant-offline-'));
    fake = await startFakeDiscord();
    world = await startBotWorld({ dataDir, fake });
    const painter = fake.addUser({ username: 'painter' }).id;
    const setUp = (name: string, channels: string[]) => {
      const { guild } = fake!.addGuild({ name });
      fake!.addMember(guild.id, painter);
      return { guild: guild.id, channels: channels.map((c) => fake!.addChannel(guild.id, { name: c }).id) };
    };
    const kept = setUp('kept', ['art', 'gone-watched', 'gone-unwatched']);
    const left = setUp('left', ['art']);
    const [art, goneWatched, goneUnwatched] = kept.channels;
    let photo = 0;
    const postIn = async (channelId: string) => {
      fake!.postMessage({ channelId, authorId: painter, files: [{ filename: 'p.png', data: await readFile(photos[photo++]) }] });
    };
    for (const channelId of [...kept.channels, ...left.channels]) {
      await world.settings.watch(channelId === left.channels[0] ? left.guild : kept.guild, channelId);
      await postIn(channelId);
      await postIn(channelId);
    }
    // A thread of a watched channel: its image is stored under the channel, with the thread beside it.
    const sketches = fake.addThread(art, { name: 'sketches', ownerId: painter }).id;
    await postIn(sketches);
    await world.bot.idle();
    await waitFor('nine images', async () => (await world!.engine.stats(kept.guild)).images + (await world!.engine.stats(left.guild)).images === 9);
    await world.settings.unwatch(kept.guild, goneUnwatched); // unwatched: its images stay searchable, until the channel goes
    await world.settings.setAutoRetrain(left.guild, false);
    await world.stop();

    // While the bot is down: no event reaches it.
    fake.removeBotFromGuild(left.guild, { dispatch: false });
    fake.deleteChannel(goneWatched, { dispatch: false });
    fake.deleteChannel(goneUnwatched, { dispatch: false });
    fake.deleteThread(sketches);

    world = await startBotWorld({ dataDir, fake });
    await world.bot.idle();
    assert.ok(!(await world.engine.namespaces()).includes(left.guild), 'the guild left is dropped');
    assert.deepEqual(await world.settings.guildIds(), [kept.guild], 'with its settings');
    assert.deepEqual(await world.settings.watched(kept.guild), [art], 'the deleted channel is unwatched');
    const channels: string[] = [];
    for await (const view of world.engine.references({ namespace: kept.guild })) channels.push(view.extra?.channelId ?? '');
    assert.deepEqual(channels, [art, art], 'only images of channels that still exist are left');
    assert.equal((await world.engine.stats(kept.guild)).images, 2);
    const logged = world.logs.filter((l) => l.includes('start-up:'));
    assert.ok(logged.some((l) => l.includes(`guild ${left.guild}`) && l.includes('2 image(s) and settings were deleted')), logged.join('\n'));
    assert.ok(logged.some((l) => l.includes(`watched channel ${goneWatched}`) && l.includes('2 image reference(s) removed')), logged.join('\n'));
    assert.ok(logged.some((l) => l.includes(`channel ${goneUnwatched}`) && l.includes('2 image reference(s) removed')), logged.join('\n'));
    assert.ok(logged.some((l) => l.includes(`channel ${sketches}`) && l.includes('1 image reference(s) removed')), logged.join('\n'));

    // Nothing else is touched by a start-up that finds nothing to do.
    await world.stop();
    world = await startBotWorld({ dataDir, fake });
    await world.bot.idle();
    assert.equal((await world.engine.stats(kept.guild)).images, 2);
    assert.deepEqual(world.logs.filter((l) => l.includes('start-up:')), []);
  });
});
