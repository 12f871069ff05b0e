import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Events, GatewayIntentBits, Partials, type Message, type PartialMessage } from 'discord.js';
import { request } from 'undici';
import { loginToFake } from '../harness/fake-discord/client.js';
import { startFakeDiscord, type FakeDiscord } from '../harness/fake-discord/index.js';

/** A 1×1 PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

/** The fake unfurls links as Discord does, and serves their pictures through its media proxy. */
describe('fake Discord: link embeds', () => {
  let fake: FakeDiscord;
  let client: Client;
  let channelId: string;
  let userId: string;
  before(async () => {
    fake = await startFakeDiscord();
    const { guild } = fake.addGuild();
    userId = fake.addUser({ username: 'painter' }).id;
    fake.addMember(guild.id, userId);
    channelId = fake.addChannel(guild.id, { name: 'art' }).id;
    client = new Client({
      intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent],
      partials: [Partials.Message, Partials.Channel],
      ...fake.clientOptions(),
    });
    await loginToFake(client, fake);
  });
  after(async () => {
    await client.destroy();
    await fake.close();
  });

  test('a link gets its embed in a later MESSAGE_UPDATE; the proxy serves the picture, and nothing with a wrong signature', async () => {
    const created = new Promise<Message>((resolve) => client.once(Events.MessageCreate, resolve));
    const posted = fake.postMessage({ channelId, authorId: userId, content: 'https://art.example/a.png', stickers: [{ id: '123456789012345678', name: 'wave' }] });
    const message = await created;
    assert.equal(message.embeds.length, 0, 'no embed yet');
    assert.deepEqual([...message.stickers.keys()], ['123456789012345678']);

    const updated = new Promise<Message | PartialMessage>((resolve) => client.once(Events.MessageUpdate, (_old, m) => resolve(m)));
    const embed = fake.linkEmbed({ url: 'https://art.example/a.png', type: 'image', picture: { url: 'https://art.example/a.png', data: PNG } });
    fake.unfurlLinks(posted.id, [embed]);
    const after = await updated;
    assert.equal(after.embeds[0]?.data.type, 'image');
    assert.deepEqual(after.embeds[0]?.thumbnail, { url: 'https://art.example/a.png', proxyURL: embed.thumbnail!.proxy_url, width: 1, height: 1 });
    assert.equal(after.editedTimestamp, null, 'an unfurl is not an edit');

    const proxyUrl = embed.thumbnail!.proxy_url!;
    assert.match(proxyUrl, /\/cdn\/external\/[0-9a-f]+\/https\/art\.example\/a\.png$/);
    const served = await request(proxyUrl);
    assert.equal(served.statusCode, 200);
    assert.deepEqual(Buffer.from(await served.body.arrayBuffer()), PNG);
    const forged = await request(proxyUrl.replace(/\/external\/[0-9a-f]+\//, '/external/00000000000000000000000000000000/'));
    assert.equal(forged.statusCode, 404);
    await forged.body.dump();
    const unknown = await request(proxyUrl.replace('a.png', 'b.png'));
    assert.equal(unknown.statusCode, 404);
    await unknown.body.dump();
  });
});
