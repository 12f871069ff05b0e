import { DiscordAPIError, MessageFlags, RESTJSONErrorCodes, type BaseMessageOptions, type Message, type RepliableInteraction } from 'discord.js';
import type { BotContext } from './context.js';

export type AnswerPayload = BaseMessageOptions & { content: string };

/** Where an answer ended up: the interaction's reply, a message in its channel, or nowhere. */
export type Delivery = { via: 'reply' | 'channel'; message: Message } | { via: 'none'; message: null };

/**
 * Discord accepts an interaction's token for 15 minutes; after that every webhook route (editing or fetching the
 * reply, follow-ups) answers 401 with this code. Answers to slow work (a query behind a slow download, a retrain)
 * can come later than that.
 */
export function isExpiredInteraction(error: unknown): boolean {
  return error instanceof DiscordAPIError && error.code === RESTJSONErrorCodes.InvalidWebhookToken;
}

/**
 * Edits the interaction's reply. When its token has expired, `late` (by default the same answer) is posted in the
 * channel instead, addressed to the member; a private reply is never made public, so it is only logged as lost.
 */
export async function editReplyOrPost(ctx: BotContext, interaction: RepliableInteraction, payload: AnswerPayload, late: AnswerPayload = payload): Promise<Delivery> {
  try {
    const message = await interaction.editReply(payload);
    // Later changes of a public reply (reactions turning pages) go through this interaction's webhook too.
    if (!interaction.ephemeral) ctx.replies.remember(message, interaction);
    return { via: 'reply', message };
  } catch (error) {
    if (!isExpiredInteraction(error)) throw error;
    return interaction.ephemeral ? privateAnswerLost(ctx, interaction) : postInChannel(ctx, interaction, late);
  }
}

/** A follow-up only the member can see; once the token has expired there is no private way left to send it. */
export async function followUpPrivately(ctx: BotContext, interaction: RepliableInteraction, payload: AnswerPayload): Promise<Delivery> {
  try {
    return { via: 'reply', message: await interaction.followUp({ ...payload, flags: MessageFlags.Ephemeral }) };
  } catch (error) {
    if (!isExpiredInteraction(error)) throw error;
    return privateAnswerLost(ctx, interaction);
  }
}

function privateAnswerLost(ctx: BotContext, interaction: RepliableInteraction): Delivery {
  ctx.log.warn(`${describe(interaction)}: its private answer is lost: the interaction token expired (Discord allows 15 minutes)`);
  return { via: 'none', message: null };
}

async function postInChannel(ctx: BotContext, interaction: RepliableInteraction, payload: AnswerPayload): Promise<Delivery> {
  const userId = interaction.user.id;
  const channel = interaction.channel;
  try {
    if (!channel?.isSendable()) throw new Error('the channel is not one I can post in');
    // Only the asker is pinged, whoever else the text may mention.
    const message = await channel.send({ ...payload, content: `<@${userId}> ${payload.content}`, allowedMentions: { users: [userId] } });
    ctx.log.info(`${describe(interaction)}: answered in the channel instead: the interaction token expired`);
    return { via: 'channel', message };
  } catch (error) {
    ctx.log.warn(`${describe(interaction)}: its answer is lost: the interaction token expired and posting in channel ${interaction.channelId} failed: ${(error as Error).message}`);
    return { via: 'none', message: null };
  }
}

function describe(interaction: RepliableInteraction): string {
  return `interaction ${interaction.id} of user ${interaction.user.id}`;
}
