import type { Client, Message } from 'discord.js';
import type { Logger } from '../log.js';
import type { DownloadPolicy } from './download.js';
import { indexMessage } from './ingest.js';
import type { BackfillState, BotSettings } from './settings.js';
import type { Engine } from '../index/engine.js';

const PAGE = 100;
const STATUS_EVERY_MS = 5_000;

/**
 * Reads a watched channel's history, newest first, a page of 100 at a time. The cursor (oldest message done) is
 * saved after every page, so a restart resumes where it stopped; re-reading a page is harmless because exact
 * duplicates are recognised.
 */
export function createBackfiller(deps: { client: Client; engine: Engine; settings: BotSettings; policy: DownloadPolicy; log: Logger }) {
  const running = new Map<string, Promise<void>>();

  async function run(state: BackfillState): Promise<void> {
    const { client, engine, settings, policy, log } = deps;
    const channel = await client.channels.fetch(state.channelId).catch(() => null);
    if (!channel || !channel.isTextBased() || !('messages' in channel)) {
      log.warn(`backfill of channel ${state.channelId}: channel not reachable; stopping`);
      return;
    }
    let lastStatus = 0;
    const status = async (final: boolean) => {
      if (!state.statusChannelId || !state.statusMessageId) return;
      if (!final && Date.now() - lastStatus < STATUS_EVERY_MS) return;
      lastStatus = Date.now();
      const text = `${final ? 'History of' : 'Reading the history of'} <#${state.channelId}>: ${state.messages} messages read, ${state.images} images indexed${final ? '. Done.' : '…'}`;
      const statusChannel = await client.channels.fetch(state.statusChannelId).catch(() => null);
      if (statusChannel?.isTextBased() && 'messages' in statusChannel) {
        await statusChannel.messages.edit(state.statusMessageId, { content: text }).catch((error: Error) => log.warn(`backfill status edit failed: ${error.message}`));
      }
    };
    while (!state.done) {
      if (!(await settings.isWatched(state.guildId, state.channelId))) return;
      const page = await channel.messages.fetch({ limit: PAGE, ...(state.before ? { before: state.before } : {}) });
      const messages: Message[] = [...page.values()].sort((a, b) => (BigInt(b.id) > BigInt(a.id) ? 1 : -1));
      for (const message of messages) {
        const outcome = await indexMessage(engine, message, policy, log);
        // A page re-read after a restart finds the images committed before it as duplicates: they count too, or
        // the total falls short by whatever the interrupted page had indexed.
        state.images += outcome.indexed + outcome.duplicates;
      }
      state.messages += messages.length;
      if (messages.length > 0) state.before = messages[messages.length - 1].id;
      state.done = messages.length < PAGE;
      await settings.saveBackfill(state);
      await status(state.done);
    }
    log.info(`backfill of channel ${state.channelId} done: ${state.messages} messages, ${state.images} images`);
  }

  return {
    start(guildId: string, channelId: string, statusMessage?: { channelId: string; messageId: string }): void {
      if (running.has(channelId)) return;
      const task = (async () => {
        const state: BackfillState = (await deps.settings.backfill(channelId)) ?? { guildId, channelId, done: false, messages: 0, images: 0 };
        if (statusMessage) Object.assign(state, { statusChannelId: statusMessage.channelId, statusMessageId: statusMessage.messageId });
        await deps.settings.saveBackfill(state);
        await run(state);
      })()
        .catch((error: Error) => deps.log.error(`backfill of channel ${channelId} failed: ${error.message}; it resumes at the next start`))
        .finally(() => running.delete(channelId));
      running.set(channelId, task);
    },

    /**
     * Resumes every unfinished backfill of the guilds the bot is in. A watched channel without a backfill state is
     * one whose /watch was interrupted after committing the watch but before the backfill saved its first state:
     * it starts from the newest message, or its history would never be read (a second /watch only says "already
     * watched").
     */
    async resumeAll(guildIds: string[]): Promise<void> {
      for (const guildId of guildIds) {
        for (const channelId of await deps.settings.watched(guildId)) {
          if (!(await deps.settings.backfill(channelId))?.done) this.start(guildId, channelId);
        }
      }
    },

    async idle(): Promise<void> {
      while (running.size > 0) await Promise.all([...running.values()]);
    },
  };
}

export type Backfiller = ReturnType<typeof createBackfiller>;
