import type { Client, RepliableInteraction } from 'discord.js';
import type { Logger } from '../log.js';
import { isExpiredInteraction } from './late-answer.js';

/** Where a progress message is now. */
export interface ProgressTarget {
  channelId: string;
  messageId: string;
  /** The member it reports to: named (and the only one pinged) when the report moves to a new message. */
  userId?: string;
  /** true: an ordinary message of the bot's; false: an interaction's reply, which only its webhook may edit. */
  ordinary: boolean;
}

/**
 * A message the bot keeps rewriting while slow work runs (a retrain's progress, a history backfill's status). It
 * starts as the interaction's reply and is edited through the interaction webhook. Once that is no longer possible
 * (the token expired after 15 minutes, or the process restarted and has no interaction), the next report is posted
 * as a new message in the same channel, addressed to the member, and later reports edit that ordinary message.
 * Reports are applied one at a time, in order; a failure is logged once, never thrown, and ends the reports
 * (rather than failing again at every page).
 */
export class ProgressMessage {
  #target: ProgressTarget;
  #chain: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(
    private readonly deps: { client: Client; log: Logger; what: string },
    target: ProgressTarget,
    private readonly interaction?: RepliableInteraction,
    /** Told whenever the report moves to a new message (the backfill saves it, to edit it after a restart). */
    private readonly onMoved?: (target: ProgressTarget) => Promise<void>,
  ) {
    this.#target = target;
  }

  get target(): ProgressTarget {
    return this.#target;
  }

  /** Resolves once this report (and every earlier one) has been applied or logged as failed. */
  report(content: string): Promise<void> {
    this.#chain = this.#chain.then(() => this.#apply(content));
    return this.#chain;
  }

  async #apply(content: string): Promise<void> {
    if (this.#stopped) return;
    const { client, log, what } = this.deps;
    const target = this.#target;
    try {
      if (!target.ordinary && this.interaction) {
        try {
          await this.interaction.editReply({ content });
          return;
        } catch (error) {
          if (!isExpiredInteraction(error)) throw error;
        }
      }
      const channel = await client.channels.fetch(target.channelId);
      if (!channel?.isSendable() || !('messages' in channel)) throw new Error('the channel is not one I can post in');
      const addressed = target.userId ? `<@${target.userId}> ${content}` : content;
      if (target.ordinary) {
        await channel.messages.edit(target.messageId, { content: addressed, allowedMentions: { parse: [] } });
        return;
      }
      const posted = await channel.send({ content: addressed, allowedMentions: target.userId ? { users: [target.userId] } : { parse: [] } });
      this.#target = { ...target, messageId: posted.id, ordinary: true };
      log.info(`${what}: reporting in a new message ${posted.id}: the interaction's reply can no longer be edited`);
      await this.onMoved?.(this.#target);
    } catch (error) {
      this.#stopped = true;
      log.warn(`${what}: could not report progress in channel ${target.channelId} (no further reports): ${(error as Error).message}`);
    }
  }
}
