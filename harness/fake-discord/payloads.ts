import {
  ChannelType,
  PermissionFlagsBits,
  GuildDefaultMessageNotifications,
  GuildExplicitContentFilter,
  GuildMFALevel,
  GuildNSFWLevel,
  GuildPremiumTier,
  GuildSystemChannelFlags,
  GuildVerificationLevel,
  StickerFormatType,
  type APIAttachment,
  type APIEmbed,
  type APIGuild,
  type APIGuildMember,
  type APIMessage,
  type APIReaction,
  type APIRole,
  type APIUser,
  type APIThreadChannel,
  type APIThreadMember,
  type ChannelFlags,
  type ThreadAutoArchiveDuration,
  type ThreadMemberFlags,
  type GatewayGuildCreateDispatchData,
  type GuildMemberFlags,
  type RoleFlags,
} from 'discord-api-types/v10';
import type { FakeCdn } from './cdn.js';
import { emojiFromKey } from './messages.js';
import { computeChannelPermissions } from './permissions.js';
import type { FakeChannel, FakeMember, FakeMessage, FakeRole, FakeState, StoredAttachment } from './state.js';

export function userPayload(state: FakeState, userId: string): APIUser {
  const user = state.users.get(userId);
  if (!user) throw new Error(`fake Discord: unknown user ${userId}`);
  return {
    id: user.id,
    username: user.username,
    global_name: user.globalName,
    discriminator: '0',
    avatar: null,
    bot: user.bot,
  };
}

export function rolePayload(role: FakeRole): APIRole {
  return {
    id: role.id,
    name: role.name,
    color: 0,
    colors: { primary_color: 0, secondary_color: null, tertiary_color: null },
    hoist: false,
    position: role.position,
    permissions: role.permissions.toString(),
    managed: false,
    mentionable: false,
    flags: 0 as RoleFlags,
  };
}

export function memberPayload(state: FakeState, member: FakeMember): APIGuildMember {
  return {
    user: userPayload(state, member.userId),
    nick: member.nick,
    roles: member.roleIds,
    joined_at: member.joinedAt,
    deaf: false,
    mute: false,
    flags: 0 as GuildMemberFlags,
  };
}

export type GuildChannelPayload = GatewayGuildCreateDispatchData['channels'][number];

export function channelPayload(channel: FakeChannel): GuildChannelPayload {
  if (channel.thread) return threadPayload(channel) as unknown as GuildChannelPayload;
  return {
    id: channel.id,
    type: channel.type,
    guild_id: channel.guildId,
    name: channel.name,
    nsfw: channel.nsfw,
    parent_id: channel.parentId,
    position: channel.position,
    permission_overwrites: channel.overwrites,
  } as GuildChannelPayload;
}

/** A thread channel (API v10): parent, owner, `thread_metadata`, counts; no overwrites of its own. */
export function threadPayload(channel: FakeChannel): APIThreadChannel {
  const meta = channel.thread!;
  return {
    id: channel.id,
    type: channel.type as APIThreadChannel['type'],
    guild_id: channel.guildId,
    name: channel.name,
    nsfw: channel.nsfw,
    parent_id: channel.parentId,
    owner_id: meta.ownerId,
    member_count: Math.min(meta.members.size, 50),
    message_count: 0,
    total_message_sent: 0,
    rate_limit_per_user: 0,
    last_message_id: null,
    flags: 0 as ChannelFlags,
    applied_tags: [],
    thread_metadata: {
      archived: meta.archived,
      auto_archive_duration: 1440 as ThreadAutoArchiveDuration,
      archive_timestamp: meta.archiveTimestamp,
      locked: meta.locked,
      ...(channel.type === ChannelType.PrivateThread ? { invitable: true } : {}),
    },
  } as APIThreadChannel;
}

/** A thread member object; `id` is the thread's id, as Discord sends it. */
export function threadMemberPayload(state: FakeState, channel: FakeChannel, userId: string, withMember = false): APIThreadMember {
  const member = state.member(channel.guildId, userId);
  return {
    id: channel.id,
    user_id: userId,
    join_timestamp: channel.thread!.members.get(userId)!,
    flags: 0 as ThreadMemberFlags,
    ...(withMember && member ? { member: memberPayload(state, member) } : {}),
  };
}

export function guildPayload(state: FakeState, guildId: string): APIGuild {
  const guild = state.guilds.get(guildId);
  if (!guild) throw new Error(`fake Discord: unknown guild ${guildId}`);
  return {
    id: guild.id,
    name: guild.name,
    icon: null,
    splash: null,
    discovery_splash: null,
    owner_id: guild.ownerId,
    region: 'us-west',
    afk_channel_id: null,
    afk_timeout: 300,
    verification_level: GuildVerificationLevel.None,
    default_message_notifications: GuildDefaultMessageNotifications.OnlyMentions,
    explicit_content_filter: GuildExplicitContentFilter.Disabled,
    roles: state.guildRoles(guildId).map(rolePayload),
    emojis: [],
    features: [],
    mfa_level: GuildMFALevel.None,
    application_id: null,
    system_channel_id: null,
    system_channel_flags: GuildSystemChannelFlags.SuppressJoinNotifications,
    rules_channel_id: null,
    vanity_url_code: null,
    description: null,
    banner: null,
    premium_tier: GuildPremiumTier.None,
    preferred_locale: guild.locale as APIGuild['preferred_locale'],
    public_updates_channel_id: null,
    nsfw_level: GuildNSFWLevel.Default,
    stickers: [],
    premium_progress_bar_enabled: false,
    hub_type: null,
    safety_alerts_channel_id: null,
    incidents_data: null,
  };
}

/** GUILD_CREATE: discord.js needs `channels`, the @everyone role and the bot's own member to build a usable guild. */
export function guildCreatePayload(state: FakeState, guildId: string): GatewayGuildCreateDispatchData {
  const guild = state.guilds.get(guildId);
  const members = state.guildMembers(guildId);
  return {
    ...guildPayload(state, guildId),
    joined_at: guild?.joinedAt ?? new Date().toISOString(),
    large: false,
    unavailable: false,
    member_count: members.length,
    members: members.map((member) => memberPayload(state, member)),
    channels: state.guildChannels(guildId).map(channelPayload),
    // Discord lists the active threads the bot can see.
    threads: state
      .guildChannels(guildId)
      .filter((channel) => channel.thread && !channel.thread.archived && (computeChannelPermissions(state, channel.id, state.applicationId) & PermissionFlagsBits.ViewChannel) !== 0n)
      .map((channel) => threadPayload(channel)) as GatewayGuildCreateDispatchData['threads'],
    presences: [],
    voice_states: [],
    stage_instances: [],
    guild_scheduled_events: [],
    soundboard_sounds: [],
  };
}

export function attachmentPayload(cdn: FakeCdn, attachment: StoredAttachment): APIAttachment {
  const url = cdn.url(attachment);
  return {
    id: attachment.id,
    filename: attachment.filename,
    size: attachment.size,
    url,
    proxy_url: url,
    content_type: attachment.contentType,
    ...(attachment.width === undefined ? {} : { width: attachment.width, height: attachment.height ?? null }),
    ...(attachment.description === undefined ? {} : { description: attachment.description }),
  };
}

/** Discord rewrites `attachment://name` in embeds to the uploaded file's URL. */
function embedPayload(cdn: FakeCdn, embed: APIEmbed, attachments: StoredAttachment[]): APIEmbed {
  const resolve = <T extends { url: string }>(media: T | undefined): T | undefined => {
    if (!media?.url.startsWith('attachment://')) return media;
    const attachment = attachments.find((candidate) => `attachment://${candidate.filename}` === media.url);
    if (!attachment) return media;
    const url = cdn.url(attachment);
    return { ...media, url, proxy_url: url, width: attachment.width, height: attachment.height };
  };
  return { type: 'rich' as APIEmbed['type'], ...embed, image: resolve(embed.image), thumbnail: resolve(embed.thumbnail) };
}

function reactionsPayload(message: FakeMessage, viewerId: string): APIReaction[] | undefined {
  if (message.reactions.size === 0) return undefined;
  return [...message.reactions].map(([key, users]) => ({
    count: users.size,
    count_details: { burst: 0, normal: users.size },
    me: users.has(viewerId),
    me_burst: false,
    burst_colors: [],
    emoji: emojiFromKey(key),
  }));
}

/** A message as REST returns it to `viewerId` (the bot); gateway events add `guild_id` and `member`. */
export function messagePayload(state: FakeState, cdn: FakeCdn, message: FakeMessage, viewerId: string): APIMessage {
  const referenced = message.referencedMessageId ? state.messages.get(message.referencedMessageId) : undefined;
  const reactions = reactionsPayload(message, viewerId);
  return {
    id: message.id,
    channel_id: message.channelId,
    author: userPayload(state, message.authorId),
    content: message.content,
    timestamp: message.timestamp,
    edited_timestamp: message.editedTimestamp,
    tts: false,
    mention_everyone: false,
    mentions: message.mentionIds.filter((id) => state.users.has(id)).map((id) => userPayload(state, id)),
    mention_roles: [],
    attachments: message.attachments.map((attachment) => attachmentPayload(cdn, attachment)),
    embeds: message.embeds.map((embed) => embedPayload(cdn, embed, message.attachments)),
    ...(message.stickers ? { sticker_items: message.stickers.map((sticker) => ({ ...sticker, format_type: StickerFormatType.PNG })) } : {}),
    pinned: false,
    type: message.type,
    flags: message.flags,
    components: message.components as APIMessage['components'],
    ...(reactions ? { reactions } : {}),
    ...(message.referencedMessageId
      ? {
          message_reference: {
            message_id: message.referencedMessageId,
            channel_id: message.channelId,
            ...(message.guildId ? { guild_id: message.guildId } : {}),
          },
          referenced_message: referenced ? messagePayload(state, cdn, { ...referenced, referencedMessageId: null }, viewerId) : null,
        }
      : {}),
    ...(message.interactionId ? { application_id: state.applicationId, webhook_id: state.applicationId } : {}),
  };
}
