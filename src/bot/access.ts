import { PermissionFlagsBits, type Guild, type GuildBasedChannel, type GuildMember, type Role } from 'discord.js';
import { referenceViews, type ImageRecord } from '../index/store.js';

const READ = [PermissionFlagsBits.ViewChannel, PermissionFlagsBits.ReadMessageHistory];

/** Whether `member` can currently see a channel's history, as Discord would decide it now. */
export function canRead(member: GuildMember, channel: GuildBasedChannel): boolean {
  return channel.permissionsFor(member)?.has(READ) ?? false;
}

function isNsfw(channel: GuildBasedChannel): boolean {
  if ('nsfw' in channel && channel.nsfw) return true;
  const parent = channel.isThread() ? channel.parent : undefined;
  return parent !== null && parent !== undefined && 'nsfw' in parent && parent.nsfw;
}

export interface ResultScope {
  member: GuildMember;
  /** Where the answer will be shown. */
  channel: GuildBasedChannel;
  /** Only images from the channel the answer is shown in. */
  sameChannelOnly?: boolean;
}

/**
 * The engine's filter for one query: a stored image is shown only if its channel still exists, the member can
 * read it now, and it is not age-restricted unless the answer goes to an age-restricted channel. Guilds never
 * mix because each guild is its own namespace.
 */
export function resultFilter(guild: Guild, scope: ResultScope): (record: ImageRecord) => boolean {
  const answerIsNsfw = isNsfw(scope.channel);
  const visible = (record: ImageRecord): boolean => {
    const channelId = record.extra?.channelId;
    if (!channelId) return false;
    if (scope.sameChannelOnly && channelId !== scope.channel.id) return false;
    const source = guild.channels.cache.get(channelId);
    if (!source || !canRead(scope.member, source)) return false;
    return answerIsNsfw || !isNsfw(source);
  };
  return (record) => readableReference(record, visible) !== undefined;
}

/**
 * The image seen through the first of its references (posts) that `visible` accepts: identical files posted in
 * several channels are one record, shown to a member through a post that member can read.
 */
export function readableReference(record: ImageRecord, visible: (view: ImageRecord) => boolean): ImageRecord | undefined {
  return referenceViews(record).find(visible);
}

/**
 * True when some role that can read the answer's channel cannot read `source`: showing `source`'s images there
 * would show them to people who cannot see them in Discord. (Per-member overwrites are not considered.)
 */
export function exposesToOthers(guild: Guild, answerChannel: GuildBasedChannel, source: GuildBasedChannel): boolean {
  const roles: Role[] = [...guild.roles.cache.values()];
  return roles.some((role) => {
    const inAnswer = answerChannel.permissionsFor(role)?.has(READ) ?? false;
    const inSource = source.permissionsFor(role)?.has(READ) ?? false;
    return inAnswer && !inSource;
  });
}
