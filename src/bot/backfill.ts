import { ChannelType, DiscordAPIError, RESTJSONErrorCodes, type Client, type ForumChannel, type GuildBasedChannel, type Message, type NewsChannel, type ReadonlyCollection, type RepliableInteraction, type TextChannel, type ThreadChannel } from 'discord.js';

type ThreadParent = TextChannel | NewsChannel | ForumChannel;
type HistoryChannel = { messages: { fetch(options: { limit: number; before?: string }): Promise<ReadonlyCollection<string, Message>> } };
import type { Logger } from '../log.js';
import { listInWords, missingBotPermissions } from './bot-permissions.js';
import type { BackfillStatusMessage } from './context.js';
import type { DownloadPolicy } from './download.js';
import { indexMessage } from './ingest.js';
import { ProgressMessage } from './progress-message.js';
import type { BackfillState, BotSettings } from './settings.js';
import type { Engine } from '../index/engine.js';

const PAGE = 100;
const STATUS_EVERY_MS = 5_000;

/** Discord's answers when the bot may not (or no longer) read a channel: 50001 Missing Access, 50013 Missing Permissions. */
function lostAccess(error: unknown): error is DiscordAPIError {
  return error instanceof DiscordAPIError && (error.code === RESTJSONErrorCodes.MissingAccess || error.code === RESTJSONErrorCodes.MissingPermissions);
}

/**
 * Reads a watched channel's history, newest first, a page of 100 at a time. The cursor (oldest message done) is
 * saved after every page, so a restart resumes where it stopped; re-reading a page is harmless because exact
 * duplicates are recognised. A channel the bot can no longer read stops its backfill with the reason, which waits
 * for a new /watch instead of failing again at every start.
 */
export function createBackfiller(deps: { client: Client; engine: Engine; settings: BotSettings; policy: DownloadPolicy; log: Logger }) {
  const running = new Map<string, Promise<void>>();

  /** The status message of the backfill: the /watch reply, or the message that took over from it. */
  function statusOf(state: BackfillState, interaction?: RepliableInteraction): ProgressMessage | undefined {
    if (!state.statusChannelId || !state.statusMessageId) return undefined;
    const target = { channelId: state.statusChannelId, messageId: state.statusMessageId, userId: state.statusUserId, ordinary: state.statusIsOrdinary ?? false };
    return new ProgressMessage({ client: deps.client, log: deps.log, what: `backfill status of channel ${state.channelId}` }, target, interaction, async (moved) => {
      Object.assign(state, { statusChannelId: moved.channelId, statusMessageId: moved.messageId, statusIsOrdinary: true });
      await deps.settings.saveBackfill(state);
    });
  }

  async function run(state: BackfillState, status: ProgressMessage | undefined): Promise<void> {
    const { client, settings, log } = deps;
    const channel = await client.channels.fetch(state.channelId).catch(() => null);
    if (!channel || (!channel.isTextBased() && channel.type !== ChannelType.GuildForum)) {
      log.warn(`backfill of channel ${state.channelId}: channel not reachable; stopping`);
      return;
    }
    let lastStatus = 0;
    const report = async (final: boolean) => {
      if (!final && Date.now() - lastStatus < STATUS_EVERY_MS) return;
      lastStatus = Date.now();
      await status?.report(
        `${final ? 'History of' : 'Reading the history of'} <#${state.channelId}>: ${state.messages} messages read, ${state.images} images indexed${final ? '. Done.' : '…'}`,
      );
    };
    // A forum has no messages of its own, only posts (threads).
    if (!channel.isTextBased()) state.done = true;
    else {
      const read = await readHistory(state, channel, () => report(false));
      if (read === 'no-access') {
        await status?.report(
          `Stopped reading the history of <#${state.channelId}>: ${state.problem}. ${state.messages} messages read, ${state.images} images indexed so far. ` +
            'Give me access, then use /watch on the channel again to continue.',
        );
      }
      if (read !== 'read') return;
    }
    if (!state.parentId && !state.threadsDone && 'threads' in channel) {
      for (const thread of await threadsOf(channel as ThreadParent)) {
        if (!(await settings.isWatched(state.guildId, state.channelId))) return;
        const own: BackfillState = (await settings.backfill(thread.id)) ?? { guildId: state.guildId, channelId: thread.id, parentId: state.channelId, done: false, messages: 0, images: 0 };
        if (own.done) continue;
        const before = { messages: own.messages, images: own.images };
        // A thread the bot may not read (a private one it was not added to) is skipped; the rest of the channel goes on.
        if ((await readHistory(own, thread, () => report(false))) === 'unwatched') return;
        state.messages += own.messages - before.messages;
        state.images += own.images - before.images;
        await settings.saveBackfill(state);
      }
      state.threadsDone = true;
      await settings.saveBackfill(state);
    }
    await report(true);
    log.info(`backfill of channel ${state.channelId} done: ${state.messages} messages, ${state.images} images`);
  }

  /**
   * Reads one channel's or thread's history page by page: 'unwatched' when its channel stopped being watched,
   * 'no-access' when Discord refused it (the reason is saved in `state.problem`).
   */
  async function readHistory(state: BackfillState, channel: HistoryChannel, progress: () => Promise<void>): Promise<'read' | 'unwatched' | 'no-access'> {
    const { engine, settings, policy, log } = deps;
    const source = state.parentId ? { channelId: state.parentId, threadId: state.channelId } : { channelId: state.channelId };
    while (!state.done) {
      if (!(await settings.isWatched(state.guildId, source.channelId))) return 'unwatched';
      let page;
      try {
        page = await channel.messages.fetch({ limit: PAGE, ...(state.before ? { before: state.before } : {}) });
      } catch (error) {
        if (!lostAccess(error)) throw error;
        const missing = 'guild' in channel ? (await missingBotPermissions(channel as GuildBasedChannel)).read : [];
        state.problem = missing.length > 0 ? `I am missing ${listInWords(missing)} there` : `Discord refused me access to it (${error.message})`;
        await settings.saveBackfill(state);
        const next = state.parentId ? 'the thread is skipped' : 'it waits for a new /watch of the channel';
        log.warn(`backfill of channel ${state.channelId} stopped: ${state.problem} (Discord: ${error.code} ${error.message}); ${next}`);
        return 'no-access';
      }
      const messages: Message[] = [...page.values()].sort((a, b) => (BigInt(b.id) > BigInt(a.id) ? 1 : -1));
      for (const message of messages) {
        const outcome = await indexMessage(engine, message, policy, log, source);
        // A page re-read after a restart finds the images committed before it as duplicates: they count too, or
        // the total falls short by whatever the interrupted page had indexed.
        state.images += outcome.indexed + outcome.duplicates;
      }
      state.messages += messages.length;
      if (messages.length > 0) state.before = messages[messages.length - 1].id;
      state.done = messages.length < PAGE;
      await settings.saveBackfill(state);
      await progress();
    }
    return 'read';
  }

  /**
   * Every thread and forum post of a watched channel the bot can read: the active ones, then the archived public
   * ones, then the archived private ones (all of them with Manage Threads, else those the bot has joined).
   */
  async function threadsOf(channel: ThreadParent): Promise<ThreadChannel[]> {
    const found = new Map<string, ThreadChannel>();
    for (const thread of (await channel.threads.fetchActive(false)).threads.values()) found.set(thread.id, thread);
    const archived = async (options: { type: 'public' | 'private'; fetchAll?: boolean }) => {
      let before: ThreadChannel | undefined;
      for (;;) {
        const page = await channel.threads.fetchArchived({ ...options, limit: 100, ...(before ? { before } : {}) }, false);
        for (const thread of page.threads.values()) found.set(thread.id, thread);
        before = [...page.threads.values()].at(-1);
        if (!page.hasMore || !before) return;
      }
    };
    await archived({ type: 'public' });
    await archived({ type: 'private', fetchAll: true }).catch(() => archived({ type: 'private', fetchAll: false }).catch(() => undefined));
    return [...found.values()];
  }

  return {
    /**
     * Starts or resumes the channel's backfill. With `status` (a /watch), the /watch reply reports its progress and
     * a backfill stopped by a permission problem is tried again.
     */
    start(guildId: string, channelId: string, status?: BackfillStatusMessage): void {
      if (running.has(channelId)) return;
      const task = (async () => {
        const state: BackfillState = (await deps.settings.backfill(channelId)) ?? { guildId, channelId, done: false, messages: 0, images: 0 };
        if (status) {
          Object.assign(state, { statusChannelId: status.channelId, statusMessageId: status.messageId, statusUserId: status.interaction.user.id, statusIsOrdinary: false });
          delete state.problem;
        }
        await deps.settings.saveBackfill(state);
        await run(state, statusOf(state, status?.interaction));
      })()
        .catch((error: Error) => deps.log.error(`backfill of channel ${channelId} failed: ${error.message}; it resumes at the next start`))
        .finally(() => running.delete(channelId));
      running.set(channelId, task);
    },

    /**
     * Resumes every unfinished backfill of the guilds the bot is in, except those stopped for lack of access (they
     * wait for a new /watch). A watched channel without a backfill state is one whose /watch was interrupted after
     * committing the watch but before the backfill saved its first state: it starts from the newest message, or its
     * history would never be read (a second /watch only says "already watched").
     */
    async resumeAll(guildIds: string[]): Promise<void> {
      for (const guildId of guildIds) {
        for (const channelId of await deps.settings.watched(guildId)) {
          const state = await deps.settings.backfill(channelId);
          if (state?.problem) deps.log.warn(`backfill of channel ${channelId} not resumed: ${state.problem}; a new /watch of the channel tries again`);
          else if (!state?.done || !state.threadsDone) this.start(guildId, channelId);
        }
      }
    },

    async idle(): Promise<void> {
      while (running.size > 0) await Promise.all([...running.values()]);
    },
  };
}

export type Backfiller = ReturnType<typeof createBackfiller>;
