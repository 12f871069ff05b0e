import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Client, Events, GatewayIntentBits, type Message } from 'discord.js';
import { loginToFake } from '../harness/fake-discord/client.js';
import { startFakeDiscord } from '../harness/fake-discord/index.js';
import { waitFor } from './helpers/wait.js';

describe('the fake Discord serves shards', () => {
  const clients: Client[] = [];
  let close = async () => undefined as void;
  after(async () => {
    for (const client of clients) await client.destroy();
    await close();
  });

  test('/gateway/bot recommends the count; IDENTIFY [id, total] gets only that shard’s guilds and their events; DMs go to shard 0', async () => {
    const fake = await startFakeDiscord({ shards: 2 });
    close = () => fake.close();
    const response = await fetch(`${fake.apiUrl}/v10/gateway/bot`, { headers: { Authorization: `Bot ${fake.token}` } });
    assert.equal(((await response.json()) as { shards: number }).shards, 2);

    const before = [0, 1].map((shard) => fake.addGuild({ name: `before ${shard}`, shard: [shard, 2] }).guild.id);
    const seen: string[][] = [[], []];
    for (const shard of [0, 1]) {
      const client = new Client({ intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages], shards: shard, shardCount: 2, ...fake.clientOptions() });
      client.on(Events.MessageCreate, (message: Message) => seen[shard].push(message.guildId ?? 'dm'));
      client.on(Events.InteractionCreate, (interaction) => seen[shard].push(interaction.guildId ?? 'dm'));
      clients.push(client);
      await loginToFake(client, fake);
      assert.deepEqual([...client.guilds.cache.keys()], [before[shard]], `READY and GUILD_CREATE of shard ${shard}`);
    }
    // Invited later: GUILD_CREATE reaches the owning shard only, and so do the guild's messages.
    const later = [0, 1].map((shard) => fake.addGuild({ name: `later ${shard}`, shard: [shard, 2] }).guild.id);
    await waitFor('the later guilds', () => clients.every((client, shard) => client.guilds.cache.has(later[shard])));
    assert.ok(!clients[0].guilds.cache.has(later[1]) && !clients[1].guilds.cache.has(later[0]));
    const user = fake.addUser({ username: 'poster' }).id;
    for (const guild of [...before, ...later]) {
      fake.addMember(guild, user);
      fake.postMessage({ channelId: fake.addChannel(guild, { name: 'c' }).id, authorId: user, content: 'hi' });
    }
    fake.dmCommand({ userId: user, name: 'forget-me' });
    await waitFor('every event', () => seen[0].length + seen[1].length === 5);
    assert.deepEqual(seen[0].sort(), [before[0], later[0], 'dm'].sort());
    assert.deepEqual(seen[1].sort(), [before[1], later[1]].sort());
  });
});
