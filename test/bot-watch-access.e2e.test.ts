import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationCommandOptionType, OverwriteType, PermissionFlagsBits } from 'discord.js';
import { startFakeDiscord, type FakeDiscord, type LoggedRequest } from '../harness/fake-discord/index.js';
import { startBotWorld, type BotWorld } from './helpers/bot-world.js';
import { referencePhotoPaths } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

const WEBHOOK_EDIT = '/webhooks/:applicationId/:token/messages/:messageId';
const CHANNEL_EDIT = '/channels/:channelId/messages/:messageId';

/**
 * /watch of a channel the bot cannot read, and a backfill that loses access later: the admin is told exactly what is
 * missing, nothing is marked watched that cannot be read, and a stopped backfill waits for a new /watch instead of
 * failing at every start. Every status edit of the /watch reply goes through the interaction webhook.
 */
describe('/watch and the bot’s own permissions in the channel', () => {
  let fake: FakeDiscord;
  let world: BotWorld;
  let dataDir: string;
  let photos: string[];
  let guildId: string;
  let ownerId: string;
  let painter: string;
  let botRoleId: string;
  let commands: string;

  const deny = (bits: bigint) => [{ id: botRoleId, type: OverwriteType.Role, allow: '0', deny: bits.toString() }];
  const watch = (channelId: string, command = 'watch') =>
    fake.slashCommand({ guildId, channelId: commands, userId: ownerId, name: command, options: [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: channelId }] });
  const historyReads = (channelId: string, since = 0): LoggedRequest[] =>
    fake.requests.filter((r) => r.method === 'GET' && r.route === '/channels/:channelId/messages' && r.params.channelId === channelId && r.at >= since);
  const warnings = (mark: number) => world.logs.slice(mark).filter((line) => /^(warn|error) /.test(line));
  async function postHistory(channelId: string, count: number): Promise<number> {
    const start = Date.now() - count * 60_000;
    let images = 0;
    for (let i = 0; i < count; i++) {
      const photo = i % 10 === 0 ? photos[(i / 10) % photos.length] : undefined;
      if (photo) images += 1;
      fake.postMessage({
        channelId,
        authorId: painter,
        content: `m${i}`,
        files: photo ? [{ filename: `h${i}.png`, data: await readFile(photo) }] : [],
        timestamp: new Date(start + i * 60_000),
        dispatch: false,
      });
    }
    return images;
  }

  before(async () => {
    photos = await referencePhotoPaths();
    fake = await startFakeDiscord();
    dataDir = await mkdtemp(join(tmpdir(), 'relevant-watch-access-'));
    world = await startBotWorld({ fake, dataDir });
    const { guild, botRole } = fake.addGuild({ name: 'Access club' });
    guildId = guild.id;
    ownerId = guild.ownerId;
    botRoleId = botRole.id;
    painter = fake.addUser({ username: 'painter' }).id;
    fake.addMember(guildId, painter);
    commands = fake.addChannel(guildId, { name: 'commands' }).id;
  });
  after(async () => {
    await world?.stop();
    await fake?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  test('a channel the bot cannot see is refused with everything that is missing; it is not watched and never read', async () => {
    const hidden = fake.addChannel(guildId, { name: 'hidden', overwrites: deny(PermissionFlagsBits.ViewChannel) }).id;
    await postHistory(hidden, 5);
    const reply = await fake.waitForReply(watch(hidden));
    const text = reply.original?.content ?? '';
    assert.ok(((reply.original?.flags ?? 0) & 64) !== 0, 'only the admin sees the refusal');
    assert.match(text, new RegExp(`^I cannot watch <#${hidden}>: I am missing View Channel and Read Message History there`));
    assert.match(text, /It is not watched/);
    assert.match(text, /Send Messages.*Embed Links.*Attach Files.*Add Reactions.*Manage Messages/s);
    assert.equal(await world.settings.isWatched(guildId, hidden), false);
    assert.equal(await world.settings.backfill(hidden), undefined);
    await world.bot.idle();
    assert.deepEqual(historyReads(hidden), []);
  });

  test('a channel the bot sees but whose history it may not read is refused naming only that', async () => {
    const noHistory = fake.addChannel(guildId, { name: 'no-history', overwrites: deny(PermissionFlagsBits.ReadMessageHistory) }).id;
    const text = (await fake.waitForReply(watch(noHistory))).original?.content ?? '';
    assert.match(text, /I am missing Read Message History there/);
    assert.doesNotMatch(text, /View Channel|Send Messages|would also need/);
    assert.equal(await world.settings.isWatched(guildId, noHistory), false);
  });

  test('a readable channel where answers would be incomplete is watched, and the admin is told what else is missing', async () => {
    const quiet = fake.addChannel(guildId, { name: 'quiet', overwrites: deny(PermissionFlagsBits.AddReactions | PermissionFlagsBits.ManageMessages) }).id;
    const images = await postHistory(quiet, 12);
    const id = watch(quiet);
    const reply = await fake.waitForReply(id, { until: (r) => r.followUps.length > 0 && /Done\.$/.test(r.original?.content ?? '') });
    assert.match(reply.followUps[0].content, new RegExp(`I can read <#${quiet}>, but to answer searches there I also need: Add Reactions .* and Manage Messages`));
    assert.ok(((reply.followUps[0].flags ?? 0) & 64) !== 0);
    assert.equal(await world.settings.isWatched(guildId, quiet), true);
    assert.equal((await world.settings.backfill(quiet))?.images, images);
  });

  test('a backfill that loses access stops with the reason, is not retried at start, shows in /watching, and a new /watch finishes it', async () => {
    const gallery = fake.addChannel(guildId, { name: 'gallery' }).id;
    const images = await postHistory(gallery, 150);
    let mark = world.logs.length;
    // The first page's first download waits until the bot's access to the channel has been taken away.
    const hold = fake.faults.cdn.holdNext(1);
    const id = watch(gallery);
    await hold.reached;
    fake.updateChannel(gallery, { overwrites: deny(PermissionFlagsBits.ReadMessageHistory) });
    hold.release();
    await waitFor('the backfill to stop', async () => (await world.settings.backfill(gallery))?.problem !== undefined);
    await world.bot.idle();
    const state = (await world.settings.backfill(gallery))!;
    assert.equal(state.problem, 'I am missing Read Message History there');
    assert.equal(state.messages, 100, 'the first page was done');
    assert.equal(await world.settings.isWatched(guildId, gallery), true, 'still watched: new posts keep being indexed');
    const status = fake.reply(id);
    assert.match(status.original?.content ?? '', new RegExp(`^Stopped reading the history of <#${gallery}>: I am missing Read Message History there\\. 100 messages read, \\d+ images indexed so far\\. .*/watch`));
    const edits = status.requests.filter((r) => r.method === 'PATCH');
    assert.ok(edits.length >= 2 && edits.every((r) => r.route === WEBHOOK_EDIT && r.status === 200), 'status edits go through the interaction webhook');
    assert.deepEqual(fake.channelEditsOfInteractionResponses, []);
    assert.equal(warnings(mark).length, 1);
    assert.match(warnings(mark)[0], new RegExp(`^warn backfill of channel ${gallery} stopped: I am missing Read Message History there \\(Discord: 50013`));

    const listed = (await fake.waitForReply(fake.slashCommand({ guildId, channelId: commands, userId: painter, name: 'watching' }))).original?.content ?? '';
    assert.match(listed, new RegExp(`<#${gallery}> \\(needs attention: I am missing Read Message History there; fix it, then /watch it again\\)`));

    // A restart does not try the channel again.
    await world.stop();
    const restartedAt = Date.now();
    mark = 0;
    world = await startBotWorld({ fake, dataDir });
    await world.bot.idle();
    assert.deepEqual(historyReads(gallery, restartedAt), []);
    assert.ok(world.logs.some((line) => line.includes(`backfill of channel ${gallery} not resumed: I am missing Read Message History there`)));

    // Access given back: a new /watch reads the rest of the history, from where it stopped.
    fake.updateChannel(gallery, { overwrites: [] });
    mark = world.logs.length;
    const again = watch(gallery);
    const done = await fake.waitForReply(again, { until: (r) => /Done\.$/.test(r.original?.content ?? '') });
    assert.match(done.original!.content, new RegExp(`^History of <#${gallery}>: 150 messages read, ${images} images indexed\\. Done\\.$`));
    assert.match(done.record.callbacks[0].body.data?.content ?? '', new RegExp(`^Trying <#${gallery}> again`));
    assert.equal(historyReads(gallery, restartedAt)[0].query.before, state.before, 'resumed at the saved cursor');
    assert.equal((await world.settings.backfill(gallery))?.problem, undefined);
    assert.deepEqual(fake.channelEditsOfInteractionResponses, []);
    assert.deepEqual(warnings(mark), []);
  });
});
