import type { APIEmbed, APIOverwrite, GuildChannelType, MessageType } from 'discord-api-types/v10';

const DISCORD_EPOCH = 1420070400000n;

export interface FakeUser {
  id: string;
  username: string;
  bot: boolean;
  globalName: string | null;
}

export interface FakeRole {
  id: string;
  guildId: string;
  name: string;
  permissions: bigint;
  position: number;
}

export interface FakeMember {
  guildId: string;
  userId: string;
  roleIds: string[];
  nick: string | null;
  joinedAt: string;
}

export interface FakeChannel {
  id: string;
  guildId: string;
  type: GuildChannelType;
  name: string;
  nsfw: boolean;
  parentId: string | null;
  position: number;
  overwrites: APIOverwrite[];
  /** Threads only (public, private, forum posts): their metadata and members; permissions come from the parent. */
  thread?: FakeThreadMeta;
}

export interface FakeThreadMeta {
  ownerId: string;
  archived: boolean;
  archiveTimestamp: string;
  locked: boolean;
  /** user id → join timestamp */
  members: Map<string, string>;
}

export interface FakeGuild {
  id: string;
  name: string;
  ownerId: string;
  locale: string;
  joinedAt: string;
}

/** Attachment metadata; the bytes live in the CDN store under the same id. */
export interface StoredAttachment {
  id: string;
  channelId: string;
  filename: string;
  contentType: string;
  size: number;
  width?: number;
  height?: number;
  description?: string;
}

export interface FakeMessage {
  id: string;
  channelId: string;
  guildId: string | null;
  authorId: string;
  type: MessageType;
  content: string;
  timestamp: string;
  editedTimestamp: string | null;
  flags: number;
  attachments: StoredAttachment[];
  embeds: APIEmbed[];
  /** Stickers sent with it (id and name; served as `sticker_items`). */
  stickers?: Array<{ id: string; name: string }>;
  mentionIds: string[];
  referencedMessageId: string | null;
  components: unknown[];
  /** emoji key (unicode, or `name:id` for custom emoji) → user ids, in insertion order. */
  reactions: Map<string, Set<string>>;
  interactionId: string | null;
}

/**
 * Everything the fake knows, as plain maps. Messages are kept per channel in id order (ids are snowflakes made from
 * the message's timestamp, so id order is time order, as on Discord).
 */
export class FakeState {
  readonly users = new Map<string, FakeUser>();
  readonly guilds = new Map<string, FakeGuild>();
  readonly roles = new Map<string, FakeRole>();
  readonly channels = new Map<string, FakeChannel>();
  /** key `${guildId}:${userId}` */
  readonly members = new Map<string, FakeMember>();
  readonly messages = new Map<string, FakeMessage>();
  #increment = 0n;
  /** The bot's application id, which is also its user id (as for every bot created since 2017). */
  readonly applicationId = this.snowflake();

  snowflake(at = Date.now()): string {
    this.#increment = (this.#increment + 1n) & 0xfffn;
    return (((BigInt(at) - DISCORD_EPOCH) << 22n) | this.#increment).toString();
  }

  member(guildId: string, userId: string): FakeMember | undefined {
    return this.members.get(`${guildId}:${userId}`);
  }

  guildRoles(guildId: string): FakeRole[] {
    return [...this.roles.values()].filter((role) => role.guildId === guildId);
  }

  guildChannels(guildId: string): FakeChannel[] {
    return [...this.channels.values()].filter((channel) => channel.guildId === guildId);
  }

  guildMembers(guildId: string): FakeMember[] {
    return [...this.members.values()].filter((member) => member.guildId === guildId);
  }

  /** Newest first, like every message list Discord returns. */
  channelMessages(channelId: string): FakeMessage[] {
    return [...this.messages.values()]
      .filter((message) => message.channelId === channelId && (message.flags & 64) === 0)
      .sort((a, b) => compareSnowflakes(b.id, a.id));
  }

  deleteChannel(channelId: string): void {
    this.channels.delete(channelId);
    for (const message of this.messages.values()) if (message.channelId === channelId) this.messages.delete(message.id);
  }

  deleteGuild(guildId: string): void {
    for (const channel of this.guildChannels(guildId)) this.deleteChannel(channel.id);
    for (const role of this.guildRoles(guildId)) this.roles.delete(role.id);
    for (const member of this.guildMembers(guildId)) this.members.delete(`${guildId}:${member.userId}`);
    this.guilds.delete(guildId);
  }
}

export function compareSnowflakes(a: string, b: string): number {
  const difference = BigInt(a) - BigInt(b);
  return difference === 0n ? 0 : difference < 0n ? -1 : 1;
}
