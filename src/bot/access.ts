import {
  ChannelType,
  PermissionFlagsBits,
  type ChatInputCommandInteraction,
  type Guild,
  type GuildBasedChannel,
  type GuildMember,
  type NonThreadGuildBasedChannel,
  type ThreadChannel,
} from 'discord.js';
import { firstAcceptedView } from '../index/references.js';
import type { ImageRecord } from '../index/store.js';
import { checkEnabled } from './privacy-checks.js';

const READ = [PermissionFlagsBits.ViewChannel, PermissionFlagsBits.ReadMessageHistory];

/**
 * Where messages are read: a channel, and for a private thread the thread itself. Discord gives a thread no
 * permissions of its own (discord.js' `permissionsFor` on a thread is the parent's), so a public thread is read by
 * whoever reads its parent; a private one only by its members and by those who may Manage Threads in the parent.
 */
export interface Place {
  channel: NonThreadGuildBasedChannel;
  privateThread?: ThreadChannel;
}

/** Where a stored image was posted: the watched channel and, for a thread or forum post, the thread. */
export interface SourceRef {
  channelId: string;
  threadId?: string;
}

export function sourceOf(record: ImageRecord): SourceRef | undefined {
  const channelId = record.extra?.channelId;
  if (!channelId) return undefined;
  return record.extra?.threadId ? { channelId, threadId: record.extra.threadId } : { channelId };
}

/** The message's own channel: the thread, for an image posted in a thread or forum post. */
export function postedIn(record: ImageRecord): string | undefined {
  return record.extra?.threadId ?? record.extra?.channelId;
}

export function placeOf(channel: GuildBasedChannel): Place | undefined {
  if (!channel.isThread()) return { channel };
  const parent = channel.parent;
  if (!parent) return undefined;
  return channel.type === ChannelType.PrivateThread ? { channel: parent, privateThread: channel } : { channel: parent };
}

/** A channel or thread by id: threads (archived ones above all) are often not cached. */
export async function channelById(guild: Guild, id: string): Promise<GuildBasedChannel | undefined> {
  const cached = guild.channels.cache.get(id);
  if (cached) return cached;
  const fetched = await guild.client.channels.fetch(id).catch(() => null);
  return fetched && 'guild' in fetched && fetched.guild.id === guild.id ? (fetched as GuildBasedChannel) : undefined;
}

/**
 * Thread memberships asked of Discord during one check (one answer or one page). Never kept longer: without the
 * privileged Guild Members intent the bot is not told when others join or leave a thread.
 */
export class Memberships {
  readonly #known = new Map<string, Promise<boolean>>();

  isMember(thread: ThreadChannel, userId: string): Promise<boolean> {
    const key = `${thread.id}:${userId}`;
    let known = this.#known.get(key);
    if (!known) {
      known = thread.members.fetch({ member: userId, force: true, cache: false }).then(
        () => true,
        () => false,
      );
      this.#known.set(key, known);
    }
    return known;
  }
}

/**
 * Whether `member` can read the place's history now, as Discord would decide it; with `viewOnly`, whether they see
 * what is posted there from now on (an answer's audience: View Channel is enough to see new messages).
 */
export async function canReadPlace(member: GuildMember, place: Place, memberships: Memberships, viewOnly = false): Promise<boolean> {
  const permissions = place.channel.permissionsFor(member);
  if (!permissions?.has(viewOnly ? PermissionFlagsBits.ViewChannel : READ)) return false;
  if (!place.privateThread || !checkEnabled('private-threads')) return true;
  return permissions.has(PermissionFlagsBits.ManageThreads) || memberships.isMember(place.privateThread, member.id);
}

/** Whether `member` can currently see a channel's (or thread's) history. */
export async function canRead(member: GuildMember, channel: GuildBasedChannel): Promise<boolean> {
  const place = placeOf(channel);
  return place !== undefined && canReadPlace(member, place, new Memberships());
}

function isNsfw(channel: GuildBasedChannel): boolean {
  if ('nsfw' in channel && channel.nsfw) return true;
  const parent = channel.isThread() ? channel.parent : undefined;
  return parent !== null && parent !== undefined && 'nsfw' in parent && parent.nsfw;
}

/** Resolves the places of stored images once per check (many images share a channel or thread). */
export class Places {
  readonly #known = new Map<string, Promise<Place | undefined>>();

  constructor(private readonly guild: Guild) {}

  of(ref: SourceRef): Promise<Place | undefined> {
    const key = `${ref.channelId}/${ref.threadId ?? ''}`;
    let known = this.#known.get(key);
    if (!known) {
      known = this.#resolve(ref);
      this.#known.set(key, known);
    }
    return known;
  }

  async #resolve(ref: SourceRef): Promise<Place | undefined> {
    const channel = this.guild.channels.cache.get(ref.channelId);
    if (!channel) return undefined;
    if (!ref.threadId) return placeOf(channel);
    const thread = await channelById(this.guild, ref.threadId);
    // A thread never changes parent; one that is gone (or that the bot can no longer see) shows nothing.
    return thread?.isThread() && thread.parentId === channel.id ? placeOf(thread) : undefined;
  }
}

export interface ResultScope {
  member: GuildMember;
  /** Where the answer will be shown. */
  channel: GuildBasedChannel;
  /** Only images from the channel the answer is shown in. */
  sameChannelOnly?: boolean;
}

/**
 * The engine's filter for one query: a stored image is shown only if its channel (and thread) still exists, the
 * member can read it now, and it is not age-restricted unless the answer goes to an age-restricted channel.
 * Guilds never mix because each guild is its own namespace.
 */
export function resultFilter(guild: Guild, scope: ResultScope, places = new Places(guild)): (record: ImageRecord) => Promise<boolean> {
  const answerIsNsfw = isNsfw(scope.channel);
  const memberships = new Memberships();
  return async (record) => {
    const ref = sourceOf(record);
    if (!ref) return false;
    // "This channel" is where the image was posted: the thread, for an image posted in one.
    if (scope.sameChannelOnly && (ref.threadId ?? ref.channelId) !== scope.channel.id) return false;
    const place = await places.of(ref);
    if (!place) return false;
    if (checkEnabled('asker-can-read') && !(await canReadPlace(scope.member, place, memberships))) return false;
    return answerIsNsfw || !isNsfw(place.channel) || !checkEnabled('nsfw');
  };
}

/** Which of the channels `ids` the member running a command can read (to list only those to them). */
export async function readableBy(interaction: ChatInputCommandInteraction, ids: string[]): Promise<string[]> {
  if (!interaction.inCachedGuild()) return [];
  const readable: string[] = [];
  for (const id of ids) {
    const channel = await channelById(interaction.guild, id);
    if (channel && (await canRead(interaction.member, channel))) readable.push(id);
  }
  return readable;
}
