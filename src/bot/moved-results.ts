import type { Message } from 'discord.js';
import { addControls } from './answer.js';
import type { BotContext } from './context.js';
import type { ResultPayload } from './results.js';

/**
 * A page turn on a public answer whose interaction token has expired (or that an earlier process sent): Discord
 * only lets the interaction's webhook edit that reply, so the page is posted as a new message addressed to the
 * member, the way a late answer is, and browsing moves to it (it is an ordinary message, edited in place from then on).
 */
export async function continueInNewMessage(ctx: BotContext, message: Message, userId: string, payload: ResultPayload): Promise<void> {
  const state = await ctx.settings.browse(message.id);
  if (!state || !message.channel.isSendable()) return;
  const moved = await message.channel.send({ ...payload, content: `<@${userId}> ${payload.content}`, allowedMentions: { users: [userId] } });
  await ctx.settings.saveBrowse(moved.id, state, ctx.config.browseTtlMinutes * 60_000);
  await ctx.settings.endBrowse(message.id);
  ctx.log.info(`results ${message.id} of user ${userId}: continued in message ${moved.id}: the interaction reply can no longer be edited`);
  await addControls(moved);
}
