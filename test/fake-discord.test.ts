import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import {
  ApplicationCommandOptionType,
  AttachmentBuilder,
  Client,
  Events,
  GatewayIntentBits,
  MessageFlags,
  OverwriteType,
  Partials,
  PermissionFlagsBits,
  type Message,
  type MessageReaction,
  type PartialMessage,
  type PartialMessageReaction,
} from 'discord.js';
import { request } from 'undici';
import { WebSocket } from 'ws';
import { loginToFake } from '../harness/fake-discord/client.js';
import { DEFAULT_EVERYONE_PERMISSIONS, startFakeDiscord, type FakeDiscord } from '../harness/fake-discord/index.js';

/** A 1×1 PNG: the bytes only need to survive the round trip unchanged. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

function nextEvent<T extends unknown[]>(client: Client, event: string, matches: (...args: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const listener = (...args: unknown[]): void => {
      if (!matches(...(args as T))) return;
      client.off(event, listener);
      resolve(args as T);
    };
    client.on(event, listener);
  });
}

describe('fake Discord driven by a real discord.js client', () => {
  let fake: FakeDiscord;
  let client: Client;
  let guildId: string;
  let channelId: string;
  let privateChannelId: string;
  let memberId: string;
  /** The client's handlers report here what discord.js made of the fake's responses. */
  const handled = new EventEmitter();

  before(async () => {
    // A short heartbeat so the suite exercises heartbeats and their ACKs.
    fake = await startFakeDiscord({ heartbeatIntervalMs: 300 });
    const { guild } = fake.addGuild({ name: 'Art club' });
    guildId = guild.id;
    memberId = fake.addUser({ username: 'painter' }).id;
    fake.addMember(guildId, memberId);
    channelId = fake.addChannel(guildId, { name: 'art' }).id;
    const staff = fake.addRole(guildId, 'staff', 0n);
    privateChannelId = fake.addChannel(guildId, {
      name: 'staff-only',
      nsfw: true,
      overwrites: [
        { id: guildId, type: OverwriteType.Role, allow: '0', deny: PermissionFlagsBits.ViewChannel.toString() },
        { id: staff.id, type: OverwriteType.Role, allow: PermissionFlagsBits.ViewChannel.toString(), deny: '0' },
      ],
    }).id;

    client = new Client({
      intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent, GatewayIntentBits.GuildMessageReactions],
      partials: [Partials.Message, Partials.Channel, Partials.Reaction],
      ...fake.clientOptions(),
    });
    client.on(Events.InteractionCreate, async (interaction) => {
      if (interaction.isChatInputCommand()) {
        const image = interaction.options.getAttachment('image', true);
        await interaction.deferReply();
        const bytes = Buffer.from(await (await request(image.url)).body.arrayBuffer());
        await interaction.editReply({
          content: `query of ${bytes.length} bytes`,
          files: [new AttachmentBuilder(PNG, { name: 'collage.png' })],
          embeds: [{ title: 'Relevant images', image: { url: 'attachment://collage.png' } }],
        });
      } else if (interaction.isButton()) {
        await interaction.update({ content: `pressed ${interaction.customId}` });
      } else if (interaction.isMessageContextMenuCommand()) {
        const response = await interaction.reply({ content: `target ${interaction.targetMessage.id}`, flags: MessageFlags.Ephemeral, withResponse: true });
        handled.emit('context-menu', response.resource?.message?.id);
      }
    });
    await loginToFake(client, fake);
  });

  /** `/relevant image:<a PNG>` by the member in #art; returns the interaction id. */
  function runRelevant(): string {
    const upload = fake.uploadAttachment(channelId, { filename: 'query.png', data: PNG });
    return fake.slashCommand({
      guildId,
      channelId,
      userId: memberId,
      name: 'relevant',
      options: [{ name: 'image', type: ApplicationCommandOptionType.Attachment, value: upload.id }],
    });
  }

  after(async () => {
    await client.destroy();
    await fake.close();
  });

  test('READY and GUILD_CREATE give the client a usable guild', () => {
    const guild = client.guilds.cache.get(guildId);
    assert.ok(guild, 'guild cached');
    assert.equal(client.user?.id, fake.botUserId);
    assert.equal(client.application?.id, fake.applicationId);
    assert.equal(guild.roles.everyone.id, guildId);
    const me = guild.members.me;
    assert.ok(me, "the bot's member is cached");
    const art = guild.channels.cache.get(channelId);
    assert.ok(art?.permissionsFor(me)?.has(PermissionFlagsBits.SendMessages));
    assert.equal(guild.channels.cache.get(privateChannelId)?.permissionsFor(me)?.has(PermissionFlagsBits.ViewChannel), false);
  });

  test('permissions: roles, @everyone and role overwrites, owner and Administrator', () => {
    assert.equal(fake.permissionsIn(channelId, memberId), DEFAULT_EVERYONE_PERMISSIONS);
    assert.equal(fake.permissionsIn(privateChannelId, memberId), 0n);
    const staff = [...fake.state.roles.values()].find((role) => role.name === 'staff');
    assert.ok(staff);
    fake.setMemberRoles(guildId, memberId, [staff.id]);
    assert.equal(fake.permissionsIn(privateChannelId, memberId), DEFAULT_EVERYONE_PERMISSIONS);
    fake.setMemberRoles(guildId, memberId, []);
    const owner = fake.state.guilds.get(guildId)?.ownerId ?? '';
    assert.ok((fake.permissionsIn(privateChannelId, owner) & PermissionFlagsBits.Administrator) !== 0n);
  });

  test('a posted message with an attachment arrives, and its bytes come from the fake CDN until the URL expires', async () => {
    const received = nextEvent<[Message]>(client, Events.MessageCreate, (message) => message.author.id === memberId);
    fake.postMessage({ channelId, authorId: memberId, content: 'my drawing', files: [{ filename: 'drawing.png', data: PNG }] });
    const [message] = await received;
    const attachment = message.attachments.first();
    assert.equal(message.content, 'my drawing');
    assert.equal(attachment?.width, 1);
    const download = await request(attachment?.url ?? '');
    assert.equal(download.statusCode, 200);
    assert.deepEqual(Buffer.from(await download.body.arrayBuffer()), PNG);

    fake.cdn.expireIssuedUrls();
    const expired = await request(attachment?.url ?? '');
    await expired.body.dump();
    assert.equal(expired.statusCode, 404);
    const refetched = await message.fetch(true);
    const fresh = await request(refetched.attachments.first()?.url ?? '');
    assert.deepEqual(Buffer.from(await fresh.body.arrayBuffer()), PNG);
  });

  test('message history pages newest first with before/after, and private channels answer Missing Access', async () => {
    const history = fake.addChannel(guildId, { name: 'history' });
    const start = Date.UTC(2024, 0, 1);
    const ids = Array.from({ length: 5 }, (_, index) =>
      fake.postMessage({ channelId: history.id, authorId: memberId, content: `old ${index}`, timestamp: new Date(start + index * 60_000), dispatch: false }).id,
    );
    const channel = await client.channels.fetch(history.id);
    assert.ok(channel?.isTextBased());
    const newest = await channel.messages.fetch({ limit: 2 });
    assert.deepEqual([...newest.keys()], [ids[4], ids[3]]);
    const older = await channel.messages.fetch({ limit: 2, before: ids[3] });
    assert.deepEqual([...older.keys()], [ids[2], ids[1]]);
    const afterFirst = await channel.messages.fetch({ limit: 2, after: ids[0] });
    assert.deepEqual([...afterFirst.keys()], [ids[2], ids[1]]);

    await assert.rejects(client.rest.get(`/channels/${privateChannelId}/messages`), /Missing Access/);
  });

  test('a slash command with an attachment option: deferReply, then editReply with a file, logged decoded', async () => {
    const reply = await fake.waitForReply(runRelevant());
    assert.deepEqual(
      reply.record.callbacks.map((callback) => callback.type),
      [5],
    );
    const edit = reply.requests.find((logged) => logged.method === 'PATCH');
    assert.ok(edit);
    assert.equal(edit.route, '/webhooks/:applicationId/:token/messages/:messageId');
    assert.deepEqual((edit.body as { content: string }).content, `query of ${PNG.length} bytes`);
    assert.equal(edit.files.length, 1);
    assert.equal(edit.files[0].filename, 'collage.png');
    assert.deepEqual(edit.files[0].data, PNG);
    assert.equal(reply.original?.attachments[0]?.filename, 'collage.png');
    assert.match(reply.original?.embeds[0]?.image?.url ?? '', /^http:\/\/127\.0\.0\.1:\d+\/cdn\/attachments\//);
    assert.ok((reply.record.ackLatencyMs ?? Infinity) < 3000);
  });

  test('a message context-menu command gets the target message', async () => {
    const target = fake.postMessage({ channelId, authorId: memberId, files: [{ filename: 'a.png', data: PNG }], dispatch: false });
    const responseMessageId = once(handled, 'context-menu');
    const id = fake.messageCommand({ guildId, channelId, userId: memberId, name: 'Find relevant images', targetMessageId: target.id });
    const reply = await fake.waitForReply(id);
    assert.equal(reply.original?.content, `target ${target.id}`);
    assert.equal(reply.original?.flags, MessageFlags.Ephemeral);
    assert.deepEqual(await responseMessageId, [reply.original?.id], 'withResponse returns the created message');
  });

  test('a button press answered with an update edits the message it is on', async () => {
    const channel = await client.channels.fetch(channelId);
    assert.ok(channel?.isSendable());
    const sent = await channel.send('page 1');
    const id = fake.clickButton({ guildId, channelId, userId: memberId, messageId: sent.id, customId: 'next' });
    const reply = await fake.waitForReply(id);
    assert.deepEqual(reply.record.callbacks.map((callback) => callback.type), [7]);
    assert.equal(fake.state.messages.get(sent.id)?.content, 'pressed next');
  });

  test('reactions both ways, including on a message the client never cached', async () => {
    const message = fake.postMessage({ channelId, authorId: memberId, content: 'react to me', dispatch: false });
    const channel = await client.channels.fetch(channelId);
    assert.ok(channel?.isTextBased());
    const fetched = await channel.messages.fetch(message.id);
    const botReaction = nextEvent<[MessageReaction]>(client, Events.MessageReactionAdd);
    await fetched.react('➡️');
    assert.ok(fake.requests.some((logged) => logged.method === 'PUT' && logged.params.emoji === '➡️' && logged.status === 204));
    assert.equal((await botReaction)[0].emoji.name, '➡️');

    const uncached = fake.postMessage({ channelId, authorId: memberId, content: 'never fetched', dispatch: false });
    const userReaction = nextEvent<[MessageReaction | PartialMessageReaction]>(client, Events.MessageReactionAdd, (reaction) => reaction.message.id === uncached.id);
    fake.addReaction(channelId, uncached.id, memberId, '🔎');
    const [reaction] = await userReaction;
    assert.equal(reaction.emoji.name, '🔎');
    await reaction.users.remove(memberId);
    assert.equal(fake.state.messages.get(uncached.id)?.reactions.size, 0);
  });

  test('a 429 with Retry-After on the reply route and a 500 on a send are retried; the answers arrive', async () => {
    fake.faults.rest.rateLimit({ method: 'PATCH', route: '/webhooks/:applicationId/:token/messages/:messageId' }, { retryAfter: 0.3 });
    const reply = await fake.waitForReply(runRelevant());
    assert.deepEqual(
      reply.requests.filter((logged) => logged.method === 'PATCH').map((logged) => logged.status),
      [429, 200],
    );

    fake.faults.rest.serverError({ method: 'POST', route: '/channels/:channelId/messages' });
    const channel = await client.channels.fetch(channelId);
    assert.ok(channel?.isSendable());
    const sent = await channel.send('after a 500');
    assert.equal(sent.content, 'after a 500');
  });

  test('a global 429 is waited out too', async () => {
    fake.faults.rest.rateLimit({ method: 'GET', route: '/channels/:channelId' }, { retryAfter: 0.2, global: true });
    const started = Date.now();
    await client.channels.fetch(channelId, { force: true });
    assert.ok(Date.now() - started >= 200);
    const statuses = fake.requests.filter((logged) => logged.route === '/channels/:channelId').map((logged) => logged.status);
    assert.deepEqual(statuses.slice(-2), [429, 200]);
  });

  test('CDN failures, held requests, and attachments of deleted messages answer 404', async () => {
    const posted = fake.postMessage({ channelId, authorId: memberId, files: [{ filename: 'gone.png', data: PNG }], dispatch: false });
    const url = posted.attachments[0].url;
    const hold = fake.cdn.holdNext(1);
    let answered = false;
    const held = request(url).then(async (response) => {
      answered = true;
      return { status: response.statusCode, bytes: Buffer.from(await response.body.arrayBuffer()) };
    });
    await hold.reached;
    const unheld = await request(url);
    await unheld.body.dump();
    assert.equal(unheld.statusCode, 200, 'only the next request is held');
    assert.equal(answered, false);
    hold.release();
    assert.deepEqual(await held, { status: 200, bytes: PNG });
    fake.cdn.failNext(1, 503);
    const failed = await request(url);
    await failed.body.dump();
    assert.equal(failed.statusCode, 503);
    const deleted = nextEvent<[Message | PartialMessage]>(client, Events.MessageDelete, (message) => message.id === posted.id);
    fake.deleteMessage(posted.id);
    await deleted;
    const gone = await request(url);
    await gone.body.dump();
    assert.equal(gone.statusCode, 404);
  });

  test('bulk deletion, channel deletion and the bot leaving a guild reach the client', async () => {
    const doomed = fake.addChannel(guildId, { name: 'doomed' });
    const ids = [1, 2].map((index) => fake.postMessage({ channelId: doomed.id, authorId: memberId, content: `m${index}`, dispatch: false }).id);
    const bulk = nextEvent<[Map<string, unknown>]>(client, Events.MessageBulkDelete);
    fake.bulkDeleteMessages(doomed.id, ids);
    assert.deepEqual([...(await bulk)[0].keys()].sort(), [...ids].sort());

    const channelGone = nextEvent(client, Events.ChannelDelete);
    fake.deleteChannel(doomed.id);
    await channelGone;
    assert.equal(client.channels.cache.has(doomed.id), false);

    const created = nextEvent(client, Events.GuildCreate);
    const other = fake.addGuild({ name: 'Other club' }).guild;
    await created;
    const left = nextEvent(client, Events.GuildDelete);
    fake.removeBotFromGuild(other.id);
    await left;
    assert.equal(client.guilds.cache.has(other.id), false);
    await assert.rejects(client.rest.get(`/guilds/${other.id}`), /Unknown Guild/);
  });

  test('heartbeats are acknowledged', () => {
    assert.ok(fake.gateway.log.some((entry) => entry.direction === 'in' && entry.op === 1));
    assert.ok(fake.gateway.log.some((entry) => entry.direction === 'out' && entry.op === 11));
    assert.ok(client.ws.ping >= 0);
  });

  test('a gateway drop is resumed and the event sent during the drop is replayed', async () => {
    await fake.gateway.disconnect(4000);
    const resumed = fake.waitForResume();
    const received = nextEvent<[Message | PartialMessage]>(client, Events.MessageCreate, (message) => message.content === 'during the drop');
    fake.postMessage({ channelId, authorId: memberId, content: 'during the drop' });
    const { replayed } = await resumed;
    assert.deepEqual(replayed, ['MESSAGE_CREATE']);
    await received;
  });

  test('an invalid session makes the client identify again at once', async () => {
    const identified = new Promise((resolve) => fake.gateway.once('identified', resolve));
    const ready = nextEvent(client, Events.ShardReady);
    const started = Date.now();
    fake.gateway.invalidateSessions(false);
    await identified;
    await ready;
    assert.ok(Date.now() - started < 3000, 'the identify throttle is skipped');
  });

  test('unknown routes answer 404 and are logged', async () => {
    await assert.rejects(client.rest.get('/guilds/1/audit-logs'), /404/);
    assert.deepEqual(
      fake.unknownRequests.map((logged) => `${logged.method} ${logged.path} ${logged.status}`),
      ['GET /guilds/1/audit-logs 404'],
    );
  });
});

describe('fake Discord REST rules, without a client', () => {
  test('a bot token is required, a late first callback is an unknown interaction, a second one is refused; close() twice is fine', async () => {
    const fake = await startFakeDiscord({ interactionAckDeadlineMs: 50 });
    try {
      const { guild } = fake.addGuild();
      const channel = fake.addChannel(guild.id, { name: 'art' });
      const call = async (method: string, path: string, body?: unknown, token?: string) => {
        const response = await request(`${fake.apiUrl}/v10${path}`, {
          method: method as 'GET',
          headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bot ${token}` } : {}) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await response.body.text();
        return { status: response.statusCode, body: text ? JSON.parse(text) : undefined };
      };
      assert.equal((await call('GET', `/channels/${channel.id}`)).status, 401);
      assert.equal((await call('GET', `/channels/${channel.id}`, undefined, fake.token)).status, 200);

      const owner = guild.ownerId;
      const early = fake.reply(fake.slashCommand({ guildId: guild.id, channelId: channel.id, userId: owner, name: 'ping' })).record;
      assert.equal((await call('POST', `/interactions/${early.id}/${early.token}/callback`, { type: 5 })).status, 204);
      const twice = await call('POST', `/interactions/${early.id}/${early.token}/callback`, { type: 5 });
      assert.deepEqual([twice.status, twice.body.code], [400, 40060]);

      const late = fake.reply(fake.slashCommand({ guildId: guild.id, channelId: channel.id, userId: owner, name: 'ping' })).record;
      await new Promise((resolve) => setTimeout(resolve, 80));
      const tooLate = await call('POST', `/interactions/${late.id}/${late.token}/callback`, { type: 5 });
      assert.deepEqual([tooLate.status, tooLate.body.code], [404, 10062]);
    } finally {
      await Promise.all([fake.close(), fake.close()]);
    }
  });

  test('an interaction token expires: its webhook routes answer 401 Invalid Webhook Token, its callback Unknown interaction', async () => {
    const fake = await startFakeDiscord({ interactionAckDeadlineMs: 0, interactionTokenLifetimeMs: 150 });
    try {
      const { guild } = fake.addGuild();
      const channel = fake.addChannel(guild.id, { name: 'art' });
      const call = async (method: string, path: string, body?: unknown) => {
        const response = await request(`${fake.apiUrl}/v10${path}`, {
          method: method as 'GET',
          headers: { 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await response.body.text();
        return { status: response.statusCode, code: text ? JSON.parse(text).code : undefined };
      };
      const command = () => fake.reply(fake.slashCommand({ guildId: guild.id, channelId: channel.id, userId: guild.ownerId, name: 'ping' })).record;
      const routes = (token: string): Array<[string, string, unknown?]> => [
        ['GET', `/webhooks/${fake.applicationId}/${token}/messages/@original`],
        ['PATCH', `/webhooks/${fake.applicationId}/${token}/messages/@original`, { content: 'edited' }],
        ['POST', `/webhooks/${fake.applicationId}/${token}?wait=true`, { content: 'follow-up' }],
        ['DELETE', `/webhooks/${fake.applicationId}/${token}/messages/@original`],
      ];
      const fresh = command();
      assert.equal((await call('POST', `/interactions/${fresh.id}/${fresh.token}/callback`, { type: 4, data: { content: 'hi' } })).status, 204);
      for (const [method, path, body] of routes(fresh.token)) assert.equal((await call(method, path, body)).status, method === 'DELETE' ? 204 : 200, `${method} ${path}`);
      fake.expireInteractionToken(fresh.id);
      assert.deepEqual(await call('POST', `/webhooks/${fake.applicationId}/${fresh.token}`, { content: 'late' }), { status: 401, code: 50027 });

      const answered = command();
      const unanswered = command();
      assert.equal((await call('POST', `/interactions/${answered.id}/${answered.token}/callback`, { type: 5 })).status, 204);
      while (Date.now() < answered.tokenExpiresAt) await new Promise((resolve) => setTimeout(resolve, 20));
      for (const [method, path, body] of routes(answered.token)) assert.deepEqual(await call(method, path, body), { status: 401, code: 50027 }, `${method} ${path}`);
      assert.deepEqual(await call('POST', `/interactions/${unanswered.id}/${unanswered.token}/callback`, { type: 5 }), { status: 404, code: 10062 });
      const original = fake.state.messages.get(answered.originalMessageId!);
      assert.ok(original && original.content === '', 'the refused edit changed nothing');
    } finally {
      await fake.close();
    }
  });

  test("without the MessageContent intent, the content of other users' messages arrives empty", async () => {
    const fake = await startFakeDiscord();
    const socket = new WebSocket(fake.gatewayUrl);
    try {
      const { guild } = fake.addGuild();
      const channel = fake.addChannel(guild.id, { name: 'art' });
      const dispatches = new EventEmitter();
      socket.on('message', (raw) => {
        const payload = JSON.parse(raw.toString());
        if (payload.op === 10) {
          const intents = GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages;
          socket.send(JSON.stringify({ op: 2, d: { token: fake.token, intents, properties: {} } }));
        }
        if (payload.op === 0) dispatches.emit(payload.t, payload.d);
      });
      await once(dispatches, 'GUILD_CREATE');
      const created = once(dispatches, 'MESSAGE_CREATE');
      fake.postMessage({ channelId: channel.id, authorId: guild.ownerId, content: 'secret', files: [{ filename: 'a.png', data: PNG }] });
      const [message] = (await created) as [{ content: string; attachments: unknown[] }];
      assert.deepEqual([message.content, message.attachments], ['', []]);
    } finally {
      socket.close();
      await fake.close();
    }
  });
});
