import { ChannelType, PermissionFlagsBits } from 'discord-api-types/v10';
import { HttpError, type Router } from './http.js';
import type { FakeDiscord } from './index.js';
import { threadMemberPayload, threadPayload } from './payloads.js';
import { compareSnowflakes, type FakeChannel } from './state.js';

type ChannelFor = (channelId: string, required: bigint) => FakeChannel;

/**
 * Thread routes of API v10: thread members (one, or the list), the guild's active threads, a channel's archived
 * public and private threads, and the private archived threads the bot has joined. Lists answer with
 * `{ threads, members, has_more }`, where `members` holds the bot's own thread memberships.
 */
export function addThreadRoutes(router: Router, fake: FakeDiscord, channelFor: ChannelFor): void {
  const { state } = fake;
  const threadFor = (channelId: string): FakeChannel => {
    const channel = channelFor(channelId, 0n);
    if (!channel.thread) throw new HttpError(400, 50024, 'Cannot execute action on this channel type');
    return channel;
  };
  const listing = (threads: FakeChannel[], hasMore?: boolean) => ({
    threads: threads.map(threadPayload),
    members: threads.filter((t) => t.thread!.members.has(fake.botUserId)).map((t) => threadMemberPayload(state, t, fake.botUserId)),
    ...(hasMore === undefined ? {} : { has_more: hasMore }),
  });
  const threadsOf = (parentId: string, archived: boolean, type: ChannelType) =>
    [...state.channels.values()].filter((c) => c.parentId === parentId && c.thread && c.thread.archived === archived && c.type === type);
  const limitOf = (query: URLSearchParams) => Math.min(Math.max(Number(query.get('limit') ?? 50), 2), 100);
  // Archived lists page by archive time (public, all private) or by thread id (joined private), newest first.
  const byArchiveTime = (threads: FakeChannel[], query: URLSearchParams) => {
    const before = query.get('before');
    const sorted = threads
      .filter((t) => !before || Date.parse(t.thread!.archiveTimestamp) < Date.parse(before))
      .sort((a, b) => Date.parse(b.thread!.archiveTimestamp) - Date.parse(a.thread!.archiveTimestamp) || compareSnowflakes(b.id, a.id));
    return listing(sorted.slice(0, limitOf(query)), sorted.length > limitOf(query));
  };

  router.add('GET', '/channels/:channelId/thread-members/:userId', ({ params, query }) => {
    const thread = threadFor(params.channelId);
    if (!thread.thread!.members.has(params.userId)) throw new HttpError(404, 10007, 'Unknown Member');
    return threadMemberPayload(state, thread, params.userId, query.get('with_member') === 'true');
  });
  router.add('GET', '/channels/:channelId/thread-members', ({ params, query }) => {
    const thread = threadFor(params.channelId);
    const after = query.get('after');
    const limit = Math.min(Math.max(Number(query.get('limit') ?? 100), 1), 100);
    return [...thread.thread!.members.keys()]
      .filter((id) => !after || compareSnowflakes(id, after) > 0)
      .sort(compareSnowflakes)
      .slice(0, limit)
      .map((id) => threadMemberPayload(state, thread, id, query.get('with_member') === 'true'));
  });
  router.add('GET', '/guilds/:guildId/threads/active', ({ params }) => {
    if (!state.guilds.has(params.guildId)) throw new HttpError(404, 10004, 'Unknown Guild');
    const active = state
      .guildChannels(params.guildId)
      .filter((c) => c.thread && !c.thread.archived && fake.botSees(c.id))
      .sort((a, b) => compareSnowflakes(b.id, a.id));
    return listing(active);
  });
  router.add('GET', '/channels/:channelId/threads/archived/public', ({ params, query }) => {
    const channel = channelFor(params.channelId, PermissionFlagsBits.ReadMessageHistory);
    const type = channel.type === ChannelType.GuildAnnouncement ? ChannelType.AnnouncementThread : ChannelType.PublicThread;
    return byArchiveTime(threadsOf(channel.id, true, type), query);
  });
  router.add('GET', '/channels/:channelId/threads/archived/private', ({ params, query }) => {
    const channel = channelFor(params.channelId, PermissionFlagsBits.ReadMessageHistory | PermissionFlagsBits.ManageThreads);
    return byArchiveTime(threadsOf(channel.id, true, ChannelType.PrivateThread), query);
  });
  router.add('GET', '/channels/:channelId/users/@me/threads/archived/private', ({ params, query }) => {
    const channel = channelFor(params.channelId, PermissionFlagsBits.ReadMessageHistory);
    const before = query.get('before');
    const joined = threadsOf(channel.id, true, ChannelType.PrivateThread)
      .filter((t) => t.thread!.members.has(fake.botUserId) && (!before || compareSnowflakes(t.id, before) < 0))
      .sort((a, b) => compareSnowflakes(b.id, a.id));
    return listing(joined.slice(0, limitOf(query)), joined.length > limitOf(query));
  });
}
