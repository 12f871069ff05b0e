import type { InteractionWebhook, Message, MessageEditOptions, RepliableInteraction } from 'discord.js';
import { isExpiredInteraction } from './late-answer.js';

/** Discord accepts an interaction's token for 15 minutes after the interaction. */
export const INTERACTION_TOKEN_LIFETIME_MS = 15 * 60_000;

/**
 * A message that is an interaction's response or follow-up. Discord documents editing those only through the
 * interaction's webhook (PATCH /webhooks/{application.id}/{token}/messages/...), never through the channel-message
 * route; they carry the application's id as `webhook_id`, which the bot's ordinary messages never have.
 */
export function isInteractionResponse(message: Message): boolean {
  return message.webhookId !== null || message.interactionMetadata !== null;
}

/**
 * The webhooks of the bot's public interaction replies while their tokens live, so that a later change of such a
 * reply (a reaction turning a page) goes through the interaction webhook. Kept in memory only: a token is a
 * credential, and after a restart the fallback (a new message) is what remains anyway.
 */
export class InteractionReplies {
  readonly #live = new Map<string, { webhook: InteractionWebhook; expiresAt: number }>();

  remember(message: Message, interaction: RepliableInteraction): void {
    this.#prune();
    this.#live.set(message.id, { webhook: interaction.webhook, expiresAt: interaction.createdTimestamp + INTERACTION_TOKEN_LIFETIME_MS });
  }

  forget(messageId: string): void {
    this.#live.delete(messageId);
  }

  /**
   * Edits the bot's own message the way Discord supports: an interaction's reply through its webhook while the
   * token lives, an ordinary message through the channel route. Resolves to null when the message is an
   * interaction's reply that can no longer be edited (its token expired, or this process never had it).
   */
  async edit(message: Message, payload: MessageEditOptions): Promise<Message | null> {
    if (!isInteractionResponse(message)) return message.edit(payload);
    const webhook = this.#webhookOf(message.id);
    if (!webhook) return null;
    try {
      return await webhook.editMessage(message.id, payload);
    } catch (error) {
      if (!isExpiredInteraction(error)) throw error;
      this.forget(message.id);
      return null;
    }
  }

  /** Deletes the bot's own message, through the interaction webhook while there is one. */
  async delete(message: Message): Promise<void> {
    const webhook = isInteractionResponse(message) ? this.#webhookOf(message.id) : undefined;
    this.forget(message.id);
    if (webhook) {
      try {
        await webhook.deleteMessage(message.id);
        return;
      } catch (error) {
        if (!isExpiredInteraction(error)) throw error;
      }
    }
    // Discord lets a bot delete its own messages through the channel route; only edits are documented otherwise.
    await message.delete();
  }

  #webhookOf(messageId: string): InteractionWebhook | undefined {
    const live = this.#live.get(messageId);
    if (live && Date.now() < live.expiresAt) return live.webhook;
    this.#live.delete(messageId);
    return undefined;
  }

  #prune(): void {
    const now = Date.now();
    for (const [id, live] of this.#live) if (now >= live.expiresAt) this.#live.delete(id);
  }
}
