import type { Server } from 'node:http';
import {
  ChannelType,
  GatewayDispatchEvents,
  GatewayIntentBits,
  MessageFlags,
  MessageType,
  PermissionFlagsBits,
  type APIAttachment,
  type APIEmbed,
  type APIMessage,
  type APIOverwrite,
  type ApplicationFlags,
  type GatewayReadyDispatchData,
  type GuildChannelType,
} from 'discord-api-types/v10';
import { FakeCdn } from './cdn.js';
import { linkEmbed, type LinkEmbedInput } from './embeds.js';
import { FakeGateway, guildOnShard } from './gateway.js';
import { emojiFromKey, storedAttachment, type FileInput } from './messages.js';
import { attachmentPayload, channelPayload, guildCreatePayload, memberPayload, messagePayload, rolePayload, threadMemberPayload, threadPayload, userPayload } from './payloads.js';
import { computeChannelPermissions } from './permissions.js';
import { FakeState, type FakeChannel, type FakeGuild, type FakeMember, type FakeMessage, type FakeRole, type FakeUser, type StoredAttachment } from './state.js';

export interface FakeDiscordOptions {
  token?: string;
  botName?: string;
  /** How long signed CDN URLs stay valid (Discord: about a day). */
  attachmentUrlLifetimeMs?: number;
  /** Discord's 3 s limit for the first interaction response; 0 turns it off. */
  interactionAckDeadlineMs?: number;
  /**
   * How long an interaction token works (Discord: 15 minutes). Afterwards its webhook routes (reply edits and
   * fetches, follow-ups) answer 401 `50027 Invalid Webhook Token` and its callback 404 `10062 Unknown interaction`.
   */
  interactionTokenLifetimeMs?: number;
  heartbeatIntervalMs?: number;
  /** The shard count `GET /gateway/bot` recommends (default 1). The gateway serves any count the client asks for. */
  shards?: number;
}

/** Members of the default @everyone role: what a fresh server grants. */
export const DEFAULT_EVERYONE_PERMISSIONS =
  PermissionFlagsBits.ViewChannel |
  PermissionFlagsBits.SendMessages |
  PermissionFlagsBits.SendMessagesInThreads |
  PermissionFlagsBits.ReadMessageHistory |
  PermissionFlagsBits.AddReactions |
  PermissionFlagsBits.AttachFiles |
  PermissionFlagsBits.EmbedLinks |
  PermissionFlagsBits.UseApplicationCommands;

/** The bot's own role: what the invite link in the README asks for. */
export const DEFAULT_BOT_PERMISSIONS = DEFAULT_EVERYONE_PERMISSIONS | PermissionFlagsBits.ManageMessages;

export interface PostMessageInput {
  channelId: string;
  authorId: string;
  content?: string;
  files?: FileInput[];
  embeds?: APIEmbed[];
  /** Stickers sent with the message (`sticker_items`; Discord keeps them apart from attachments and embeds). */
  stickers?: Array<{ id: string; name: string }>;
  mentionIds?: string[];
  /** Makes the message a reply to this one. */
  replyTo?: string;
  /** Backdates the message (and its snowflake), for history. */
  timestamp?: Date;
  /** false: history that exists before the test starts listening; no MESSAGE_CREATE is sent. */
  dispatch?: boolean;
}

/**
 * The simulated server side: state, the CDN and the gateway, with the methods that change the world and tell the
 * connected client about it. FakeDiscord adds REST, interactions and waiting on top.
 */
export class FakeWorld {
  readonly state = new FakeState();
  readonly token: string;
  readonly apiUrl: string;
  readonly cdnUrl: string;
  readonly gatewayUrl: string;
  readonly cdn: FakeCdn;
  readonly gateway: FakeGateway;
  /** What `GET /gateway/bot` answers as `shards`. */
  readonly recommendedShards: number;
  readonly #optionAttachments = new Map<string, StoredAttachment>();

  constructor(server: Server, port: number, options: FakeDiscordOptions) {
    this.token = options.token ?? 'fake-bot-token';
    this.apiUrl = `http://127.0.0.1:${port}/api`;
    this.cdnUrl = `http://127.0.0.1:${port}/cdn`;
    this.gatewayUrl = `ws://127.0.0.1:${port}/gateway`;
    this.cdn = new FakeCdn(this.cdnUrl, options.attachmentUrlLifetimeMs ?? 24 * 3600_000);
    this.gateway = new FakeGateway(server, this.gatewayUrl, {
      token: this.token,
      ready: (_sessionId, shard) => this.#ready(shard),
      guildCreates: (shard) =>
        [...this.state.guilds.keys()]
          .filter((id) => guildOnShard(id, shard))
          .map((id) => ({ t: GatewayDispatchEvents.GuildCreate, d: guildCreatePayload(this.state, id) })),
    });
    this.recommendedShards = options.shards ?? 1;
    this.gateway.heartbeatIntervalMs = options.heartbeatIntervalMs ?? this.gateway.heartbeatIntervalMs;
    this.state.users.set(this.botUserId, { id: this.botUserId, username: options.botName ?? 'Relevance', bot: true, globalName: null });
  }

  get applicationId(): string {
    return this.state.applicationId;
  }

  get botUserId(): string {
    return this.state.applicationId;
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
  addGuild(input: { name?: string; ownerId?: string; everyonePermissions?: bigint; botPermissions?: bigint; locale?: string; shard?: [number, number] } = {}): {
    guild: FakeGuild;
    everyone: FakeRole;
    botRole: FakeRole;
  } {
    const id = this.#guildId(input.shard);
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
    const role = this.require(this.state.roles.get(roleId), `role ${roleId}`);
    role.permissions = permissions;
    this.gateway.dispatch({ t: GatewayDispatchEvents.GuildRoleUpdate, d: { guild_id: role.guildId, role: rolePayload(role) } });
  }

  /** Adds a member (creating the user if `userId` is unknown is the caller's job: use addUser first). */
  addMember(guildId: string, userId: string, roleIds: string[] = []): FakeMember {
    this.require(this.state.users.get(userId), `user ${userId}`);
    const member: FakeMember = { guildId, userId, roleIds, nick: null, joinedAt: new Date().toISOString() };
    this.state.members.set(`${guildId}:${userId}`, member);
    return member;
  }

  /** Changes a member's roles; the client hears nothing without the privileged GuildMembers intent, as on Discord. */
  setMemberRoles(guildId: string, userId: string, roleIds: string[]): void {
    this.require(this.state.member(guildId, userId), `member ${userId} of ${guildId}`).roleIds = roleIds;
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
    const channel = this.require(this.state.channels.get(channelId), `channel ${channelId}`);
    Object.assign(channel, changes);
    this.gateway.dispatch({ t: GatewayDispatchEvents.ChannelUpdate, d: channelPayload(channel) });
  }

  /** The member's effective permissions in the channel (roles, overwrites, owner, Administrator). */
  permissionsIn(channelId: string, userId: string): bigint {
    return computeChannelPermissions(this.state, channelId, userId);
  }

  // ---- threads and forum posts ------------------------------------------------------------------------------------

  /**
   * A thread in a text, announcement or forum channel (public: everyone who reads the parent sees it; private: its
   * members and whoever may Manage Threads in the parent). The owner is its first member. THREAD_CREATE reaches
   * the bot only if it can see the thread.
   */
  addThread(parentId: string, input: { name: string; ownerId: string; private?: boolean; memberIds?: string[]; archived?: boolean; timestamp?: Date }): FakeChannel {
    const parent = this.require(this.state.channels.get(parentId), `channel ${parentId}`);
    const at = input.timestamp ?? new Date();
    const joined = at.toISOString();
    const thread: FakeChannel = {
      id: this.state.snowflake(at.getTime()),
      guildId: parent.guildId,
      type: input.private ? ChannelType.PrivateThread : ChannelType.PublicThread,
      name: input.name,
      nsfw: parent.nsfw,
      parentId,
      position: 0,
      overwrites: [],
      thread: {
        ownerId: input.ownerId,
        archived: input.archived ?? false,
        archiveTimestamp: joined,
        locked: false,
        members: new Map([input.ownerId, ...(input.memberIds ?? [])].map((id) => [id, joined])),
      },
    };
    this.state.channels.set(thread.id, thread);
    if (this.botSees(thread.id)) this.#dispatchThreadCreate(thread);
    return thread;
  }

  /** A forum post: a public thread of the forum whose starter message has the thread's id, as on Discord. */
  addForumPost(forumId: string, input: Omit<PostMessageInput, 'channelId' | 'replyTo'> & { name: string }): { thread: FakeChannel; message: APIMessage } {
    const thread = this.addThread(forumId, { name: input.name, ownerId: input.authorId, ...(input.timestamp ? { timestamp: input.timestamp } : {}) });
    const posted = this.postMessage({ ...input, channelId: thread.id, dispatch: false });
    const message = this.state.messages.get(posted.id)!;
    this.state.messages.delete(message.id);
    message.id = thread.id;
    this.state.messages.set(message.id, message);
    if (input.dispatch !== false) this.dispatchMessage(GatewayDispatchEvents.MessageCreate, message);
    return { thread, message: this.serialize(message) };
  }

  /**
   * Adds or removes thread members. THREAD_MEMBERS_UPDATE reaches the bot only with the GuildMembers intent or
   * when the bot itself is added or removed; a bot added to a thread it could not see gets THREAD_CREATE.
   */
  setThreadMembers(threadId: string, changes: { add?: string[]; remove?: string[] }): void {
    const thread = this.require(this.state.channels.get(threadId), `channel ${threadId}`);
    const meta = this.require(thread.thread, `thread ${threadId}`);
    const sawBefore = this.botSees(threadId);
    const now = new Date().toISOString();
    const added = (changes.add ?? []).filter((id) => !meta.members.has(id));
    const removed = (changes.remove ?? []).filter((id) => meta.members.has(id));
    for (const id of added) meta.members.set(id, now);
    for (const id of removed) meta.members.delete(id);
    if (!sawBefore && this.botSees(threadId)) this.#dispatchThreadCreate(thread);
    const concernsBot = [...added, ...removed].includes(this.botUserId);
    this.gateway.dispatch(
      {
        t: GatewayDispatchEvents.ThreadMembersUpdate,
        d: {
          id: threadId,
          guild_id: thread.guildId,
          member_count: Math.min(meta.members.size, 50),
          added_members: added.map((id) => threadMemberPayload(this.state, thread, id, true)),
          removed_member_ids: removed,
        },
      },
      undefined,
      (intents) => concernsBot || (intents & GatewayIntentBits.GuildMembers) !== 0,
    );
  }

  /** Archives or unarchives a thread (THREAD_UPDATE to those who see it). */
  setThreadArchived(threadId: string, archived: boolean): void {
    const thread = this.require(this.state.channels.get(threadId), `channel ${threadId}`);
    const meta = this.require(thread.thread, `thread ${threadId}`);
    meta.archived = archived;
    meta.archiveTimestamp = new Date().toISOString();
    if (this.botSees(threadId)) this.gateway.dispatch({ t: GatewayDispatchEvents.ThreadUpdate, d: threadPayload(thread) });
  }

  /** Deletes a thread and its messages: THREAD_DELETE ({ id, guild_id, parent_id, type }). */
  deleteThread(threadId: string): void {
    const thread = this.require(this.state.channels.get(threadId), `channel ${threadId}`);
    const sees = this.botSees(threadId);
    this.removeMessages(this.state.channelMessages(threadId));
    this.state.deleteChannel(threadId);
    if (sees) this.gateway.dispatch({ t: GatewayDispatchEvents.ThreadDelete, d: { id: thread.id, guild_id: thread.guildId, parent_id: thread.parentId, type: thread.type } });
  }

  /** Whether the bot can see the channel or thread (View Channel, and for a private thread membership or Manage Threads). */
  botSees(channelId: string): boolean {
    return (this.permissionsIn(channelId, this.botUserId) & PermissionFlagsBits.ViewChannel) !== 0n;
  }

  #dispatchThreadCreate(thread: FakeChannel): void {
    const member = thread.thread!.members.has(this.botUserId) ? { member: threadMemberPayload(this.state, thread, this.botUserId) } : {};
    this.gateway.dispatch({ t: GatewayDispatchEvents.ThreadCreate, d: { ...threadPayload(thread), newly_created: true, ...member } });
  }

  // ---- driving events ----------------------------------------------------------------------------------------------

  /** A user posts a message; attachment URLs point at the fake CDN. */
  postMessage(input: PostMessageInput): APIMessage {
    const channel = this.require(this.state.channels.get(input.channelId), `channel ${input.channelId}`);
    const uploads = (input.files ?? []).map((file) => storedAttachment(this.state, channel.id, file));
    for (const { attachment, data } of uploads) this.cdn.store(attachment, data);
    const message = this.createMessage({
      channelId: channel.id,
      authorId: input.authorId,
      content: input.content ?? '',
      attachments: uploads.map((upload) => upload.attachment),
      embeds: input.embeds ?? [],
      ...(input.stickers ? { stickers: input.stickers } : {}),
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

  /**
   * A user deletes a message. `dispatch: false`: the bot never hears of it (deleted while it was down, or out of
   * its view); REST then answers 10008 Unknown Message for it and its attachments 404, as on Discord.
   */
  deleteMessage(messageId: string, options: { dispatch?: boolean } = {}): void {
    const message = this.require(this.state.messages.get(messageId), `message ${messageId}`);
    this.removeMessages([message]);
    if (options.dispatch === false) return;
    this.gateway.dispatch({
      t: GatewayDispatchEvents.MessageDelete,
      d: { id: message.id, channel_id: message.channelId, ...(message.guildId ? { guild_id: message.guildId } : {}) },
    });
  }

  bulkDeleteMessages(channelId: string, messageIds: string[]): void {
    const channel = this.require(this.state.channels.get(channelId), `channel ${channelId}`);
    this.removeMessages(messageIds.flatMap((id) => this.state.messages.get(id) ?? []));
    this.gateway.dispatch({ t: GatewayDispatchEvents.MessageDeleteBulk, d: { ids: messageIds, channel_id: channelId, guild_id: channel.guildId } });
  }

  /** `dispatch: false`: deleted while the bot was down (it finds out only from the channel list, or 10003). */
  deleteChannel(channelId: string, options: { dispatch?: boolean } = {}): void {
    const channel = this.require(this.state.channels.get(channelId), `channel ${channelId}`);
    this.removeMessages(this.state.channelMessages(channelId));
    this.state.deleteChannel(channelId);
    if (options.dispatch === false) return;
    this.gateway.dispatch({ t: GatewayDispatchEvents.ChannelDelete, d: channelPayload(channel) });
  }

  /**
   * The bot is kicked or the guild deleted: GUILD_DELETE without `unavailable`, and the guild is gone from REST.
   * `dispatch: false`: it happened while the bot was down; the next READY simply no longer lists the guild.
   */
  removeBotFromGuild(guildId: string, options: { dispatch?: boolean } = {}): void {
    for (const channel of this.state.guildChannels(guildId)) this.removeMessages(this.state.channelMessages(channel.id));
    this.state.deleteGuild(guildId);
    if (options.dispatch === false) return;
    this.gateway.dispatch({ t: GatewayDispatchEvents.GuildDelete, d: { id: guildId } });
  }

  /**
   * A user edits their message: new content, attachments removed (their CDN URLs then answer 404) or added (Discord
   * lets the author remove attachments; adding needs a new upload, which clients do through the same PATCH). The
   * client hears MESSAGE_UPDATE with the whole message, unless `dispatch: false` (edited while the bot was down).
   */
  editMessage(
    messageId: string,
    edit: { content?: string; removeAttachmentIds?: string[]; addFiles?: FileInput[]; embeds?: APIEmbed[]; dispatch?: boolean },
  ): APIMessage {
    const message = this.require(this.state.messages.get(messageId), `message ${messageId}`);
    const removed = message.attachments.filter((attachment) => edit.removeAttachmentIds?.includes(attachment.id));
    for (const attachment of removed) this.cdn.remove(attachment.id);
    const added = (edit.addFiles ?? []).map((file) => storedAttachment(this.state, message.channelId, file));
    for (const { attachment, data } of added) this.cdn.store(attachment, data);
    message.attachments = [...message.attachments.filter((attachment) => !removed.includes(attachment)), ...added.map((upload) => upload.attachment)];
    if (edit.content !== undefined) message.content = edit.content;
    if (edit.embeds !== undefined) message.embeds = edit.embeds;
    message.editedTimestamp = new Date().toISOString();
    if (edit.dispatch !== false) this.dispatchMessage(GatewayDispatchEvents.MessageUpdate, message);
    return this.serialize(message);
  }

  /**
   * The embed Discord makes of a posted link, its picture served by the fake's media proxy (`linkEmbed` in
   * ./embeds.ts). Pass it to `unfurlLinks`, or to `postMessage` for history that was unfurled long ago.
   */
  linkEmbed(input: LinkEmbedInput): APIEmbed {
    return linkEmbed(this.cdn, input);
  }

  /**
   * Discord unfurls a message's links a moment after it was posted: the message gains `embeds` and the client hears
   * MESSAGE_UPDATE with the whole message, `edited_timestamp` unchanged (an unfurl is not an edit). `dispatch: false`:
   * unfurled while the bot was not looking.
   */
  unfurlLinks(messageId: string, embeds: APIEmbed[], options: { dispatch?: boolean } = {}): APIMessage {
    const message = this.require(this.state.messages.get(messageId), `message ${messageId}`);
    message.embeds = [...message.embeds, ...embeds];
    if (options.dispatch !== false) this.dispatchMessage(GatewayDispatchEvents.MessageUpdate, message);
    return this.serialize(message);
  }

  /** A user reacts; returns once MESSAGE_REACTION_ADD has been sent. */
  addReaction(channelId: string, messageId: string, userId: string, emoji: string): void {
    const message = this.require(this.state.messages.get(messageId), `message ${messageId}`);
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
    const message = this.require(this.state.messages.get(messageId), `message ${messageId}`);
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

  // ---- used by the REST routes -------------------------------------------------------------------------------------

  createMessage(input: {
    channelId: string;
    authorId: string;
    content: string;
    attachments: StoredAttachment[];
    embeds: APIEmbed[];
    stickers?: Array<{ id: string; name: string }>;
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
      ...(input.stickers ? { stickers: input.stickers } : {}),
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
    // A thread's messages reach only those who can see the thread (a private one: members and thread managers).
    if (this.state.channels.get(message.channelId)?.thread && !this.botSees(message.channelId)) return;
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

  #ready(shard: [number, number]): Omit<GatewayReadyDispatchData, 'session_id' | 'resume_gateway_url'> {
    return {
      v: 10,
      user: userPayload(this.state, this.botUserId),
      guilds: [...this.state.guilds.keys()].filter((id) => guildOnShard(id, shard)).map((id) => ({ id, unavailable: true })),
      shard,
      application: { id: this.applicationId, flags: 0 as ApplicationFlags, flags_new: '0' },
    };
  }

  /** A new guild id; with `shard: [id, total]`, one whose guild that shard owns (the id's timestamp picks the shard). */
  #guildId(shard?: [number, number]): string {
    const now = Date.now();
    for (let at = now; ; at++) {
      const id = this.state.snowflake(at);
      if (!shard || guildOnShard(id, shard)) return id;
    }
  }

  #createRole(guildId: string, name: string, permissions: bigint): FakeRole {
    const role: FakeRole = { id: this.state.snowflake(), guildId, name, permissions, position: this.state.guildRoles(guildId).length };
    this.state.roles.set(role.id, role);
    return role;
  }

  protected require<T>(value: T | undefined, what: string): T {
    if (value === undefined) throw new Error(`fake Discord: unknown ${what}`);
    return value;
  }

  /** An attachment uploaded with `uploadAttachment`, for resolving attachment options. */
  protected optionAttachment(id: string): StoredAttachment | undefined {
    return this.#optionAttachments.get(id);
  }
}
