/**
 * A local fake Discord (REST + gateway + CDN on one 127.0.0.1 port) that the real discord.js client talks to.
 *
 * Pitfalls measured with discord.js 14.28 / @discordjs/rest 2.6 / @discordjs/ws 1.2, and how this harness meets them:
 * - `client.login()` resolves once the shards are connected, before the `clientReady` event: wait for the event
 *   (`loginToFake` in ./client.ts does).
 * - Point the client here with `rest: { api: fake.apiUrl }`; @discordjs/rest appends `/v10`, so REST lives under
 *   `/api/v10`. The gateway URL comes from `GET /gateway/bot` (a `ws://` URL; the client adds `?v=10&encoding=json`,
 *   and no compression as long as zlib-sync is not installed) and RESUME goes to READY's `resume_gateway_url`.
 * - The identify throttle (5 s per bucket, and `max_concurrency` does not help a single shard) is skipped with the
 *   `ws.buildIdentifyThrottler` client option (`fake.clientOptions()`); it matters on a re-IDENTIFY after an
 *   invalid session.
 * - READY must carry `application` ({ id, flags }) or the client never becomes ready; GUILD_CREATE must carry
 *   `channels`, the @everyone role (id = guild id) and the bot's own member, or permission checks throw.
 * - INTERACTION_CREATE must carry `entitlements`, `authorizing_integration_owners`, the `channel` object and
 *   `data.resolved.attachments` for attachment options; `member.permissions` and `app_permissions` are computed
 *   from roles and overwrites here, as Discord does.
 * - Reactions on messages the client has not cached only arrive with `Partials.Message` and `Partials.Reaction`.
 * - A 429 without `Retry-After` makes @discordjs/rest retry in a tight loop; every 429 here sends it (seconds),
 *   with `X-RateLimit-*` headers on per-route limits and `X-RateLimit-Global` on global ones.
 * - Close code 4000 makes the client RESUME after ~500 ms; destroying the client while that resume is pending
 *   leaves a reconnect running, so wait for `fake.waitForResume()` before `client.destroy()`.
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ApplicationCommandType,
  ChannelType,
  ComponentType,
  GatewayDispatchEvents,
  GatewayIntentBits,
  InteractionType,
  MessageFlags,
  MessageType,
  PermissionFlagsBits,
  type APIApplicationCommand,
  type ApplicationFlags,
  type APIApplicationCommandInteractionDataOption,
  type APIAttachment,
  type APIChatInputApplicationCommandInteraction,
  type APIEmbed,
  type APIInteractionDataResolvedChannel,
  type APIMessage,
  type APIMessageApplicationCommandInteraction,
  type APIMessageComponentInteraction,
  type APIOverwrite,
  type APIUser,
  type GatewayReadyDispatchData,
  type GuildChannelType,
} from 'discord-api-types/v10';
import type { ClientOptions } from 'discord.js';
import { FakeCdn } from './cdn.js';
import { FakeGateway } from './gateway.js';
import { RestFaults, decodeBody, sendJson, type LoggedRequest } from './http.js';
import {
  commandInteraction,
  resolveOptions,
  type FakeInteraction,
  type InteractionBase,
  type InteractionRecord,
} from './interactions.js';
import { emojiFromKey, storedAttachment, type FileInput } from './messages.js';
import { attachmentPayload, channelPayload, guildCreatePayload, memberPayload, messagePayload, rolePayload, userPayload } from './payloads.js';
import { computeChannelPermissions } from './permissions.js';
import { buildRouter, handleRest } from './routes.js';
import { FakeState, type FakeChannel, type FakeGuild, type FakeMember, type FakeMessage, type FakeRole, type FakeUser, type StoredAttachment } from './state.js';

export type { LoggedFile, LoggedRequest } from './http.js';
export type { InteractionRecord } from './interactions.js';
export type { FileInput } from './messages.js';
export { computeBasePermissions, computeChannelPermissions, hasPermissions } from './permissions.js';

export interface FakeDiscordOptions {
  token?: string;
  botName?: string;
  /** How long signed CDN URLs stay valid (Discord: about a day). */
  attachmentUrlLifetimeMs?: number;
  /** Discord's 3 s limit for the first interaction response; 0 turns it off. */
  interactionAckDeadlineMs?: number;
  heartbeatIntervalMs?: number;
}

/** Members of the default @everyone role: what a fresh server grants. */
export const DEFAULT_EVERYONE_PERMISSIONS =
  PermissionFlagsBits.ViewChannel |
  PermissionFlagsBits.SendMessages |
  PermissionFlagsBits.ReadMessageHistory |
  PermissionFlagsBits.AddReactions |
  PermissionFlagsBits.AttachFiles |
  PermissionFlagsBits.EmbedLinks |
  PermissionFlagsBits.UseApplicationCommands;

/** The bot's own role: what the invite link in the README asks for. */
export const DEFAULT_BOT_PERMISSIONS = DEFAULT_EVERYONE_PERMISSIONS | PermissionFlagsBits.ManageMessages;

export interface ReplyResult {
  record: InteractionRecord;
  /** The original response as it is now; null if the bot deleted it. */
  original: APIMessage | null;
  followUps: APIMessage[];
  /** Every REST request made with this interaction's token, in order. */
  requests: LoggedRequest[];
}

export interface PostMessageInput {
  channelId: string;
  authorId: string;
  content?: string;
  files?: FileInput[];
  embeds?: APIEmbed[];
  mentionIds?: string[];
  /** Makes the message a reply to this one. */
  replyTo?: string;
  /** Backdates the message (and its snowflake), for history. */
  timestamp?: Date;
  /** false: history that exists before the test starts listening; no MESSAGE_CREATE is sent. */
  dispatch?: boolean;
}

interface InteractionTarget {
  guildId: string;
  channelId: string;
  userId: string;
  locale?: string;
}

export class FakeDiscord {
  readonly state = new FakeState();
  readonly requests: LoggedRequest[] = [];
  readonly interactions = new Map<string, InteractionRecord>();
  readonly commands = { global: [] as APIApplicationCommand[], guild: new Map<string, APIApplicationCommand[]>() };
  readonly faults: { rest: RestFaults; cdn: FakeCdn; gateway: FakeGateway };
  readonly token: string;
  readonly interactionAckDeadlineMs: number;
  readonly apiUrl: string;
  readonly cdnUrl: string;
  readonly gatewayUrl: string;
  readonly cdn: FakeCdn;
  readonly gateway: FakeGateway;
  /** 'request' (a LoggedRequest), emitted once the request is answered and logged. */
  readonly events = new EventEmitter();
  readonly #server: Server;

  constructor(server: Server, port: number, options: FakeDiscordOptions) {
    this.#server = server;
    this.token = options.token ?? 'fake-bot-token';
    this.interactionAckDeadlineMs = options.interactionAckDeadlineMs ?? 3000;
    this.apiUrl = `http://127.0.0.1:${port}/api`;
    this.cdnUrl = `http://127.0.0.1:${port}/cdn`;
    this.gatewayUrl = `ws://127.0.0.1:${port}/gateway`;
    this.cdn = new FakeCdn(this.cdnUrl, options.attachmentUrlLifetimeMs ?? 24 * 3600_000);
    this.gateway = new FakeGateway(server, this.gatewayUrl, {
      token: this.token,
      ready: () => this.#ready(),
      guildCreates: () =>
        [...this.state.guilds.keys()].map((id) => ({ t: GatewayDispatchEvents.GuildCreate, d: guildCreatePayload(this.state, id) })),
    });
    this.gateway.heartbeatIntervalMs = options.heartbeatIntervalMs ?? this.gateway.heartbeatIntervalMs;
    this.faults = { rest: new RestFaults(), cdn: this.cdn, gateway: this.gateway };
    this.state.users.set(this.botUserId, { id: this.botUserId, username: options.botName ?? 'Relevance', bot: true, globalName: null });
    const router = buildRouter(this);
    server.on('request', (request, response) => {
      const path = request.url ?? '/';
      if (path.startsWith('/cdn/')) return this.cdn.handle(request, response, path.slice('/cdn'.length));
      if (path.startsWith('/api/')) return void handleRest(this, router, request, response);
      sendJson(response, 404, { message: '404: Not Found', code: 0 });
    });
  }

  get applicationId(): string {
    return this.state.applicationId;
  }

  get botUserId(): string {
    return this.state.applicationId;
  }

  /** The discord.js options that point a client here; spread them into `new Client({ intents, ...options })`. */
  clientOptions(): Pick<ClientOptions, 'rest' | 'ws'> {
    return {
      rest: { api: this.apiUrl, cdn: this.cdnUrl },
      ws: { buildIdentifyThrottler: () => ({ waitForIdentify: async () => undefined }) },
    };
  }

  /** Requests to routes the fake does not serve, so a test can assert the bot used nothing unexpected. */
  get unknownRequests(): LoggedRequest[] {
    return this.requests.filter((request) => request.route === null);
  }

  // ---- building the world ------------------------------------------------------------------------------------------

  addUser(input: { username: string; bot?: boolean; id?: string }): FakeUser {
    const user: FakeUser = { id: input.id ?? this.state.snowflake(), username: input.username, bot: input.bot ?? false, globalName: null };
    this.state.users.set(user.id, user);
    return user;
  }

  /**
   * A guild the bot is in: an owner, the @everyone role (id = guild id), a "Bot" role for the bot's member.
   * Added after login, it reaches the client as GUILD_CREATE (the bot was invited).
   */
  addGuild(input: { name?: string; ownerId?: string; everyonePermissions?: bigint; botPermissions?: bigint; locale?: string } = {}): {
    guild: FakeGuild;
    everyone: FakeRole;
    botRole: FakeRole;
  } {
    const id = this.state.snowflake();
    const ownerId = input.ownerId ?? this.addUser({ username: `owner-${id.slice(-4)}` }).id;
    const guild: FakeGuild = { id, name: input.name ?? `guild-${id.slice(-4)}`, ownerId, locale: input.locale ?? 'en-US', joinedAt: new Date().toISOString() };
    this.state.guilds.set(id, guild);
    const everyone: FakeRole = { id, guildId: id, name: '@everyone', permissions: input.everyonePermissions ?? DEFAULT_EVERYONE_PERMISSIONS, position: 0 };
    this.state.roles.set(id, everyone);
    this.addMember(id, ownerId);
    const botRole = this.#createRole(id, 'Bot', input.botPermissions ?? DEFAULT_BOT_PERMISSIONS);
    this.addMember(id, this.botUserId, [botRole.id]);
    this.gateway.dispatch({ t: GatewayDispatchEvents.GuildCreate, d: guildCreatePayload(this.state, id) });
    return { guild, everyone, botRole };
  }

  addRole(guildId: string, name: string, permissions: bigint): FakeRole {
    const role = this.#createRole(guildId, name, permissions);
    this.gateway.dispatch({ t: GatewayDispatchEvents.GuildRoleCreate, d: { guild_id: guildId, role: rolePayload(role) } });
    return role;
  }

  setRolePermissions(roleId: string, permissions: bigint): void {
    const role = this.#require(this.state.roles.get(roleId), `role ${roleId}`);
    role.permissions = permissions;
    this.gateway.dispatch({ t: GatewayDispatchEvents.GuildRoleUpdate, d: { guild_id: role.guildId, role: rolePayload(role) } });
  }

  /** Adds a member (creating the user if `userId` is unknown is the caller's job: use addUser first). */
  addMember(guildId: string, userId: string, roleIds: string[] = []): FakeMember {
    this.#require(this.state.users.get(userId), `user ${userId}`);
    const member: FakeMember = { guildId, userId, roleIds, nick: null, joinedAt: new Date().toISOString() };
    this.state.members.set(`${guildId}:${userId}`, member);
    return member;
  }

  /** Changes a member's roles; the client hears nothing without the privileged GuildMembers intent, as on Discord. */
  setMemberRoles(guildId: string, userId: string, roleIds: string[]): void {
    this.#require(this.state.member(guildId, userId), `member ${userId} of ${guildId}`).roleIds = roleIds;
    this.gateway.dispatch({
      t: GatewayDispatchEvents.GuildMemberUpdate,
      d: { guild_id: guildId, ...memberPayload(this.state, this.state.member(guildId, userId) as FakeMember) },
    });
  }

  addChannel(
    guildId: string,
    input: { name: string; type?: GuildChannelType; nsfw?: boolean; overwrites?: APIOverwrite[]; parentId?: string },
  ): FakeChannel {
    const channel: FakeChannel = {
      id: this.state.snowflake(),
      guildId,
      type: input.type ?? ChannelType.GuildText,
      name: input.name,
      nsfw: input.nsfw ?? false,
      parentId: input.parentId ?? null,
      position: this.state.guildChannels(guildId).length,
      overwrites: input.overwrites ?? [],
    };
    this.state.channels.set(channel.id, channel);
    this.gateway.dispatch({ t: GatewayDispatchEvents.ChannelCreate, d: channelPayload(channel) });
    return channel;
  }

  updateChannel(channelId: string, changes: Partial<Pick<FakeChannel, 'name' | 'nsfw' | 'overwrites'>>): void {
    const channel = this.#require(this.state.channels.get(channelId), `channel ${channelId}`);
    Object.assign(channel, changes);
    this.gateway.dispatch({ t: GatewayDispatchEvents.ChannelUpdate, d: channelPayload(channel) });
  }

  /** The member's effective permissions in the channel (roles, overwrites, owner, Administrator). */
  permissionsIn(channelId: string, userId: string): bigint {
    return computeChannelPermissions(this.state, channelId, userId);
  }

  // ---- driving events ----------------------------------------------------------------------------------------------

  /** A user posts a message; attachment URLs point at the fake CDN. */
  postMessage(input: PostMessageInput): APIMessage {
    const channel = this.#require(this.state.channels.get(input.channelId), `channel ${input.channelId}`);
    const uploads = (input.files ?? []).map((file) => storedAttachment(this.state, channel.id, file));
    for (const { attachment, data } of uploads) this.cdn.store(attachment, data);
    const message = this.createMessage({
      channelId: channel.id,
      authorId: input.authorId,
      content: input.content ?? '',
      attachments: uploads.map((upload) => upload.attachment),
      embeds: input.embeds ?? [],
      mentionIds: input.mentionIds ?? [],
      referencedMessageId: input.replyTo ?? null,
      type: input.replyTo ? MessageType.Reply : MessageType.Default,
      ...(input.timestamp ? { at: input.timestamp.getTime() } : {}),
    });
    if (input.dispatch !== false) this.dispatchMessage(GatewayDispatchEvents.MessageCreate, message);
    return this.serialize(message);
  }

  /** Uploads a file the way a slash command's attachment option does; pass the result's id as the option value. */
  uploadAttachment(channelId: string, file: FileInput): APIAttachment {
    const { attachment, data } = storedAttachment(this.state, channelId, file);
    this.cdn.store(attachment, data);
    this.#optionAttachments.set(attachment.id, attachment);
    return attachmentPayload(this.cdn, attachment);
  }

  deleteMessage(messageId: string): void {
    const message = this.#require(this.state.messages.get(messageId), `message ${messageId}`);
    this.removeMessages([message]);
    this.gateway.dispatch({
      t: GatewayDispatchEvents.MessageDelete,
      d: { id: message.id, channel_id: message.channelId, ...(message.guildId ? { guild_id: message.guildId } : {}) },
    });
  }

  bulkDeleteMessages(channelId: string, messageIds: string[]): void {
    const channel = this.#require(this.state.channels.get(channelId), `channel ${channelId}`);
    this.removeMessages(messageIds.flatMap((id) => this.state.messages.get(id) ?? []));
    this.gateway.dispatch({ t: GatewayDispatchEvents.MessageDeleteBulk, d: { ids: messageIds, channel_id: channelId, guild_id: channel.guildId } });
  }

  deleteChannel(channelId: string): void {
    const channel = this.#require(this.state.channels.get(channelId), `channel ${channelId}`);
    this.removeMessages(this.state.channelMessages(channelId));
    this.state.deleteChannel(channelId);
    this.gateway.dispatch({ t: GatewayDispatchEvents.ChannelDelete, d: channelPayload(channel) });
  }

  /** The bot is kicked or the guild deleted: GUILD_DELETE without `unavailable`, and the guild is gone from REST. */
  removeBotFromGuild(guildId: string): void {
    for (const channel of this.state.guildChannels(guildId)) this.removeMessages(this.state.channelMessages(channel.id));
    this.state.deleteGuild(guildId);
    this.gateway.dispatch({ t: GatewayDispatchEvents.GuildDelete, d: { id: guildId } });
  }

  /** A user reacts; returns once MESSAGE_REACTION_ADD has been sent. */
  addReaction(channelId: string, messageId: string, userId: string, emoji: string): void {
    const message = this.#require(this.state.messages.get(messageId), `message ${messageId}`);
    const users = message.reactions.get(emoji) ?? new Set<string>();
    message.reactions.set(emoji, users);
    if (users.has(userId)) return;
    users.add(userId);
    const member = message.guildId ? this.state.member(message.guildId, userId) : undefined;
    this.gateway.dispatch({
      t: GatewayDispatchEvents.MessageReactionAdd,
      d: {
        user_id: userId,
        channel_id: channelId,
        message_id: messageId,
        ...(message.guildId ? { guild_id: message.guildId } : {}),
        ...(member ? { member: memberPayload(this.state, member) } : {}),
        emoji: emojiFromKey(emoji),
        message_author_id: message.authorId,
        burst: false,
        burst_colors: [],
        type: 0,
      },
    });
  }

  removeReaction(channelId: string, messageId: string, userId: string, emoji: string): void {
    const message = this.#require(this.state.messages.get(messageId), `message ${messageId}`);
    const users = message.reactions.get(emoji);
    if (!users?.delete(userId)) return;
    if (users.size === 0) message.reactions.delete(emoji);
    this.gateway.dispatch({
      t: GatewayDispatchEvents.MessageReactionRemove,
      d: {
        user_id: userId,
        channel_id: channelId,
        message_id: messageId,
        ...(message.guildId ? { guild_id: message.guildId } : {}),
        emoji: emojiFromKey(emoji),
        burst: false,
        type: 0,
      },
    });
  }

  /**
   * A member runs a chat-input command. Option values are what Discord sends (attachment options: the id from
   * `uploadAttachment`); `data.resolved` is filled from them. Returns the interaction's id; see `waitForReply`.
   */
  slashCommand(target: InteractionTarget & { name: string; options?: APIApplicationCommandInteractionDataOption[] }): string {
    const options = target.options ?? [];
    const resolved = resolveOptions(options, {
      attachment: (id) => {
        const attachment = this.#optionAttachments.get(id);
        return attachment ? attachmentPayload(this.cdn, attachment) : undefined;
      },
      user: (id) => (this.state.users.has(id) ? userPayload(this.state, id) : undefined),
      member: (id) => {
        const member = this.state.member(target.guildId, id);
        if (!member) return undefined;
        const { user: _user, deaf: _deaf, mute: _mute, ...rest } = memberPayload(this.state, member);
        return { ...rest, permissions: this.permissionsIn(target.channelId, id).toString() };
      },
      role: (id) => {
        const role = this.state.roles.get(id);
        return role ? rolePayload(role) : undefined;
      },
      channel: (id) => {
        const channel = this.state.channels.get(id);
        return channel ? { ...channelPayload(channel), permissions: this.permissionsIn(id, target.userId).toString() } as APIInteractionDataResolvedChannel : undefined;
      },
    });
    return this.#dispatchInteraction(
      commandInteraction<APIChatInputApplicationCommandInteraction>(this.#interactionBase(target), {
        id: this.#commandId(target.guildId, target.name, ApplicationCommandType.ChatInput),
        name: target.name,
        type: ApplicationCommandType.ChatInput,
        guild_id: target.guildId,
        options,
        resolved,
      }),
    );
  }

  /** A member uses a message context-menu command on `targetMessageId`. */
  messageCommand(target: InteractionTarget & { name: string; targetMessageId: string }): string {
    const message = this.#require(this.state.messages.get(target.targetMessageId), `message ${target.targetMessageId}`);
    return this.#dispatchInteraction(
      commandInteraction<APIMessageApplicationCommandInteraction>(this.#interactionBase(target), {
        id: this.#commandId(target.guildId, target.name, ApplicationCommandType.Message),
        name: target.name,
        type: ApplicationCommandType.Message,
        guild_id: target.guildId,
        target_id: message.id,
        resolved: { messages: { [message.id]: this.serialize(message) } },
      }),
    );
  }

  /** A member clicks a button on one of the bot's messages (callback types 6 and 7 answer these). */
  clickButton(target: InteractionTarget & { messageId: string; customId: string }): string {
    const message = this.#require(this.state.messages.get(target.messageId), `message ${target.messageId}`);
    const { data: _data, ...common } = commandInteraction(this.#interactionBase(target), {} as FakeInteraction['data']);
    return this.#dispatchInteraction({
      ...common,
      type: InteractionType.MessageComponent,
      data: { custom_id: target.customId, component_type: ComponentType.Button },
      message: this.serialize(message),
    } as APIMessageComponentInteraction as unknown as FakeInteraction);
  }

  // ---- waiting -----------------------------------------------------------------------------------------------------

  /**
   * Resolves once the bot has answered the interaction with a real message (an immediate reply, or a deferral
   * followed by its edit), or once `until` holds for later edits (progress messages). Rejects after `timeoutMs`
   * with what the bot did so far.
   */
  waitForReply(interactionId: string, options: { until?: (reply: ReplyResult) => boolean; timeoutMs?: number } = {}): Promise<ReplyResult> {
    const until = options.until ?? ((reply: ReplyResult) => reply.record.replyLatencyMs !== null || reply.record.callbacks.some((c) => c.type === 6 || c.type === 7));
    const progress = (): string => {
      const { record, requests } = this.reply(interactionId);
      const calls = requests.map((logged) => `${logged.method} ${logged.route} → ${logged.status}`);
      return `a reply to interaction ${interactionId} (callbacks: [${record.callbacks.map((c) => c.type)}]; requests: [${calls.join(', ')}])`;
    };
    return this.#waitFor(options.timeoutMs ?? 10_000, progress, () => {
      const reply = this.reply(interactionId);
      return until(reply) ? reply : undefined;
    });
  }

  /** What the bot has done so far in answer to the interaction. */
  reply(interactionId: string): ReplyResult {
    const record = this.#require(this.interactions.get(interactionId), `interaction ${interactionId}`);
    const original = record.originalMessageId ? this.state.messages.get(record.originalMessageId) : undefined;
    return {
      record,
      original: original ? this.serialize(original) : null,
      followUps: record.followUpMessageIds.flatMap((id) => {
        const message = this.state.messages.get(id);
        return message ? [this.serialize(message)] : [];
      }),
      requests: this.requests.filter((request) => request.params.token === record.token),
    };
  }

  /** The first logged REST request, past or future, that matches. */
  waitForRequest(matches: (request: LoggedRequest) => boolean, timeoutMs = 10_000): Promise<LoggedRequest> {
    return this.#waitFor(timeoutMs, () => 'matching REST request', () => this.requests.find(matches));
  }

  /** Resolves when a RESUME has been answered (RESUMED sent, missed events replayed). */
  waitForResume(timeoutMs = 10_000): Promise<{ sessionId: string; replayed: string[] }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('fake Discord: no RESUME within the time limit')), timeoutMs);
      this.gateway.once('resumed', (event: { sessionId: string; replayed: string[] }) => {
        clearTimeout(timer);
        resolve(event);
      });
    });
  }

  async close(): Promise<void> {
    await this.gateway.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.#server.close((error) => (error ? reject(error) : resolve())));
  }

  // ---- used by the REST routes -------------------------------------------------------------------------------------

  readonly #optionAttachments = new Map<string, StoredAttachment>();

  createMessage(input: {
    channelId: string;
    authorId: string;
    content: string;
    attachments: StoredAttachment[];
    embeds: APIEmbed[];
    mentionIds?: string[];
    referencedMessageId?: string | null;
    type?: MessageType;
    flags?: number;
    components?: unknown[];
    interactionId?: string | null;
    at?: number;
  }): FakeMessage {
    const at = input.at ?? Date.now();
    const channel = this.state.channels.get(input.channelId);
    const message: FakeMessage = {
      id: this.state.snowflake(at),
      channelId: input.channelId,
      guildId: channel?.guildId ?? null,
      authorId: input.authorId,
      type: input.type ?? MessageType.Default,
      content: input.content,
      timestamp: new Date(at).toISOString(),
      editedTimestamp: null,
      flags: input.flags ?? 0,
      attachments: input.attachments,
      embeds: input.embeds,
      mentionIds: input.mentionIds ?? [],
      referencedMessageId: input.referencedMessageId ?? null,
      components: input.components ?? [],
      reactions: new Map(),
      interactionId: input.interactionId ?? null,
    };
    this.state.messages.set(message.id, message);
    return message;
  }

  serialize(message: FakeMessage): APIMessage {
    return messagePayload(this.state, this.cdn, message, this.botUserId);
  }

  /**
   * MESSAGE_CREATE / MESSAGE_UPDATE with `guild_id` and `member`. Without the privileged MessageContent intent,
   * content, embeds, attachments and components are emptied unless the bot wrote the message or is mentioned.
   */
  dispatchMessage(event: GatewayDispatchEvents.MessageCreate | GatewayDispatchEvents.MessageUpdate, message: FakeMessage): void {
    if ((message.flags & MessageFlags.Ephemeral) !== 0) return;
    const member = message.guildId ? this.state.member(message.guildId, message.authorId) : undefined;
    const full = {
      ...this.serialize(message),
      ...(message.guildId ? { guild_id: message.guildId } : {}),
      ...(member ? { member: (({ user: _user, ...rest }) => rest)(memberPayload(this.state, member)) } : {}),
    };
    const visibleWithoutIntent = message.authorId === this.botUserId || message.mentionIds.includes(this.botUserId);
    this.gateway.dispatch({ t: event, d: full }, (intents) =>
      (intents & GatewayIntentBits.MessageContent) !== 0 || visibleWithoutIntent
        ? full
        : { ...full, content: '', embeds: [], attachments: [], components: [] },
    );
  }

  removeMessages(messages: FakeMessage[]): void {
    for (const message of messages) {
      for (const attachment of message.attachments) this.cdn.remove(attachment.id);
      this.state.messages.delete(message.id);
    }
  }

  /** Called by the routes after every change to an interaction's messages; waiters hear of it via 'request'. */
  noteReplyProgress(record: InteractionRecord): void {
    const original = record.originalMessageId ? this.state.messages.get(record.originalMessageId) : undefined;
    if (record.replyLatencyMs === null && original && (original.flags & MessageFlags.Loading) === 0) {
      record.replyLatencyMs = Date.now() - record.createdAt;
    }
  }

  #ready(): Omit<GatewayReadyDispatchData, 'session_id' | 'resume_gateway_url'> {
    return {
      v: 10,
      user: userPayload(this.state, this.botUserId) as APIUser,
      guilds: [...this.state.guilds.keys()].map((id) => ({ id, unavailable: true })),
      shard: [0, 1],
      application: { id: this.applicationId, flags: 0 as ApplicationFlags, flags_new: '0' },
    };
  }

  #createRole(guildId: string, name: string, permissions: bigint): FakeRole {
    const role: FakeRole = { id: this.state.snowflake(), guildId, name, permissions, position: this.state.guildRoles(guildId).length };
    this.state.roles.set(role.id, role);
    return role;
  }

  #commandId(guildId: string, name: string, type: ApplicationCommandType): string {
    const registered = [...this.commands.global, ...(this.commands.guild.get(guildId) ?? [])];
    return registered.find((command) => command.name === name && (command.type ?? 1) === type)?.id ?? this.state.snowflake();
  }

  #interactionBase(target: InteractionTarget): InteractionBase {
    const guild = this.#require(this.state.guilds.get(target.guildId), `guild ${target.guildId}`);
    const channel = this.#require(this.state.channels.get(target.channelId), `channel ${target.channelId}`);
    const member = this.#require(this.state.member(target.guildId, target.userId), `member ${target.userId}`);
    return {
      id: this.state.snowflake(),
      applicationId: this.applicationId,
      token: `${Buffer.from(this.state.snowflake()).toString('base64url')}.${Math.random().toString(36).slice(2)}`,
      guildId: guild.id,
      guildLocale: guild.locale,
      channel: channelPayload(channel) as InteractionBase['channel'],
      member: { ...memberPayload(this.state, member), permissions: this.permissionsIn(channel.id, target.userId).toString() } as InteractionBase['member'],
      appPermissions: this.permissionsIn(channel.id, this.botUserId),
      locale: target.locale ?? 'en-US',
    };
  }

  #dispatchInteraction(payload: FakeInteraction): string {
    this.interactions.set(payload.id, {
      id: payload.id,
      token: payload.token,
      payload,
      createdAt: Date.now(),
      callbacks: [],
      originalMessageId: null,
      followUpMessageIds: [],
      ackLatencyMs: null,
      replyLatencyMs: null,
    });
    this.gateway.dispatch({ t: GatewayDispatchEvents.InteractionCreate, d: payload });
    return payload.id;
  }

  #waitFor<T>(timeoutMs: number, describe: () => string, check: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const listener = (): void => {
        const found = check();
        if (found === undefined) return;
        clearTimeout(timer);
        this.events.off('request', listener);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.events.off('request', listener);
        reject(new Error(`fake Discord: no ${describe()} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.events.on('request', listener);
      listener();
    });
  }

  #require<T>(value: T | undefined, what: string): T {
    if (value === undefined) throw new Error(`fake Discord: unknown ${what}`);
    return value;
  }
}

/** Starts the fake on 127.0.0.1 and an ephemeral port. */
export async function startFakeDiscord(options: FakeDiscordOptions = {}): Promise<FakeDiscord> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return new FakeDiscord(server, (server.address() as AddressInfo).port, options);
}
