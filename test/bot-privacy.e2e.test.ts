import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { ApplicationCommandOptionType, OverwriteType, PermissionFlagsBits } from 'discord.js';
import type { APIEmbed, APIOverwrite } from 'discord-api-types/v10';
import { mulberry32 } from '../src/util/random.js';
import { hasPermissions } from '../harness/fake-discord/index.js';
import { resultLinks, startBotWorld, type BotWorld } from './helpers/bot-world.js';
import { nearDuplicate, referencePhotoPaths } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

const READ = PermissionFlagsBits.ViewChannel | PermissionFlagsBits.ReadMessageHistory;
const SEED = 20261128;

describe('no result ever leaks: random guilds, roles, overwrites, NSFW flags and members', () => {
  let world: BotWorld;
  const guilds: Array<{ id: string; channels: string[]; members: string[] }> = [];
  after(() => world?.stop());

  before(async () => {
    const random = mulberry32(SEED);
    const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
    world = await startBotWorld();
    const { fake } = world;
    const photos = await referencePhotoPaths();
    let expected = 0;
    for (let g = 0; g < 3; g++) {
      const { guild, botRole } = fake.addGuild({ name: `guild ${g}` });
      const roles = [0, 1, 2].map((r) => fake.addRole(guild.id, `role ${r}`, random() < 0.3 ? READ : 0n));
      const members: string[] = [];
      for (let m = 0; m < 5; m++) {
        const user = fake.addUser({ username: `g${g}m${m}` }).id;
        fake.addMember(guild.id, user, roles.filter(() => random() < 0.4).map((r) => r.id));
        members.push(user);
      }
      const channels: string[] = [];
      for (let c = 0; c < 4; c++) {
        const overwrites: APIOverwrite[] = [{ id: botRole.id, type: OverwriteType.Role, allow: READ.toString(), deny: '0' }];
        if (random() < 0.5) overwrites.push({ id: guild.id, type: OverwriteType.Role, allow: '0', deny: pick([PermissionFlagsBits.ViewChannel, READ, PermissionFlagsBits.ReadMessageHistory]).toString() });
        for (const role of roles) {
          const roll = random();
          if (roll < 0.25) overwrites.push({ id: role.id, type: OverwriteType.Role, allow: READ.toString(), deny: '0' });
          else if (roll < 0.4) overwrites.push({ id: role.id, type: OverwriteType.Role, allow: '0', deny: PermissionFlagsBits.ViewChannel.toString() });
        }
        if (random() < 0.3) overwrites.push({ id: pick(members), type: OverwriteType.Member, allow: random() < 0.5 ? READ.toString() : '0', deny: random() < 0.5 ? PermissionFlagsBits.ViewChannel.toString() : '0' });
        const channel = fake.addChannel(guild.id, { name: `c${c}`, nsfw: random() < 0.3, overwrites }).id;
        await world.settings.watch(guild.id, channel);
        channels.push(channel);
      }
      for (const photo of photos) {
        fake.postMessage({ channelId: pick(channels), authorId: pick(members), files: [{ filename: 'p.png', data: await readFile(photo) }] });
        expected += 1;
      }
      guilds.push({ id: guild.id, channels, members });
    }
    await waitFor('every image indexed', async () => {
      let total = 0;
      for (const g of guilds) total += (await world.engine.stats(g.id)).images;
      return total === expected;
    });
  });

  test('40 random queries: every result is from the asker’s guild, a channel they can read, and NSFW only in NSFW', async () => {
    const random = mulberry32(SEED + 1);
    const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
    const photos = await referencePhotoPaths();
    const { fake } = world;
    let checked = 0;
    let leaks = 0;
    let queries = 0;
    while (queries < 40) {
      const guild = pick(guilds);
      const member = pick(guild.members);
      const visible = guild.channels.filter((c) => hasPermissions(fake.permissionsIn(c, member), PermissionFlagsBits.ViewChannel));
      if (visible.length === 0) continue;
      const channel = pick(visible);
      queries += 1;
      const id = world.relevant(guild.id, channel, member, await nearDuplicate(pick(photos)));
      const reply = await fake.waitForReply(id, { until: (r) => r.record.replyLatencyMs !== null && (!/only to you/.test(r.original?.content ?? '') || r.followUps.length > 0) });
      const shown = [reply.original, ...reply.followUps].flatMap((m) => resultLinks(m?.embeds as APIEmbed[] | undefined));
      const queryNsfw = fake.state.channels.get(channel)!.nsfw;
      for (const link of shown) {
        const [, , , , guildId, channelId] = link.split('/');
        checked += 1;
        const readable = hasPermissions(fake.permissionsIn(channelId, member), READ);
        const nsfwOk = queryNsfw || !fake.state.channels.get(channelId)!.nsfw;
        if (guildId !== guild.id || !readable || !nsfwOk) leaks += 1;
      }
    }
    console.log(`# ${queries} queries, ${checked} results checked, ${leaks} leaks`);
    assert.equal(leaks, 0);
    assert.ok(checked > 40, 'the queries returned results to check');
  });

  test('/forget-me removes a member’s images everywhere; /purge empties a channel and is for admins only', async () => {
    const { fake } = world;
    const count = async (guildId: string) => (await world.engine.stats(guildId)).images;
    const author = guilds[0].members[0];
    const mine = [...fake.state.messages.values()].filter((m) => m.authorId === author && m.attachments.length > 0).length;
    const before = await count(guilds[0].id);
    const forget = await fake.waitForReply(fake.slashCommand({ guildId: guilds[0].id, channelId: guilds[0].channels[0], userId: author, name: 'forget-me' }));
    assert.match(forget.original?.content ?? '', new RegExp(`Removed ${mine} image`));
    assert.equal(await count(guilds[0].id), before - mine);

    const target = guilds[1].channels[0];
    const inChannel = [...fake.state.messages.values()].filter((m) => m.channelId === target && m.authorId !== fake.botUserId && m.attachments.length > 0).length;
    const option = [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: target }];
    const notAdmin = await fake.waitForReply(fake.slashCommand({ guildId: guilds[1].id, channelId: target, userId: guilds[1].members[1], name: 'purge', options: option }));
    assert.match(JSON.stringify(notAdmin.record.callbacks), /Manage Server/);
    const ownerId = fake.state.guilds.get(guilds[1].id)!.ownerId;
    const purged = await fake.waitForReply(fake.slashCommand({ guildId: guilds[1].id, channelId: target, userId: ownerId, name: 'purge', options: option }));
    assert.match(purged.original?.content ?? '', new RegExp(`Removed ${inChannel} image`));
    assert.ok(!(await world.settings.watched(guilds[1].id)).includes(target));
  });
});
