import type { MessageReaction, PartialMessageReaction, PartialUser, User } from 'discord.js';
import { applyBrowse } from '../bot/browse.js';
import type { BotContext } from '../bot/context.js';
import { continueInNewMessage } from '../bot/moved-results.js';
import { applyJudgement, judgeOfEmoji } from '../bot/feedback.js';
import { actionOfEmoji } from '../bot/results.js';

/**
 * ⬅️ ➡️ 🔎 👍 👎 ❌ on a result message; the invoker's reaction is removed afterwards so the control works again. A
 * result message that is an interaction's reply is changed through the interaction's webhook (ctx.replies).
 */
export async function onMessageReactionAdd(ctx: BotContext, reaction: MessageReaction | PartialMessageReaction, user: User | PartialUser): Promise<void> {
  if (user.id === ctx.client.user?.id) return;
  const action = actionOfEmoji(reaction.emoji.name);
  const judge = judgeOfEmoji(reaction.emoji.name);
  const guild = reaction.message.guild ?? (reaction.message.guildId ? ctx.client.guilds.cache.get(reaction.message.guildId) : undefined);
  if ((!action && !judge) || !guild) return;
  const outcome = judge
    ? await applyJudgement(ctx, guild, reaction.message.id, user.id, judge)
    : await applyBrowse(ctx, guild, reaction.message.id, user.id, action!);
  if (outcome.kind === 'ignored') return;
  const message = reaction.message.partial ? await reaction.message.fetch() : reaction.message;
  if (outcome.kind === 'closed') {
    await ctx.replies.delete(message);
    return;
  }
  const edited = await ctx.replies.edit(message, { ...outcome.payload, attachments: [] });
  if (!edited) {
    await continueInNewMessage(ctx, message, user.id, outcome.payload);
    return;
  }
  await reaction.users.remove(user.id).catch((error: Error) => ctx.log.warn(`could not remove a browsing reaction: ${error.message}`));
}
