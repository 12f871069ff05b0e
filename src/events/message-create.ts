import type { Message } from 'discord.js';
import type { BotContext } from '../bot/context.js';
import { downloadPolicy } from '../bot/download-policy.js';
import { indexMessage, watchedSourceOf } from '../bot/ingest.js';
import { imagesOf } from '../bot/message-images.js';
import { noticeReposts } from '../bot/reposts.js';
import { searchByImage } from '../bot/search.js';
import { errorTextFor } from '../bot/user-text.js';
import { isAppError } from '../errors.js';

export async function onMessageCreate(ctx: BotContext, message: Message): Promise<void> {
  if (!message.guildId || message.author.bot) return;
  if (ctx.client.user && message.mentions.users.has(ctx.client.user.id) && message.reference?.messageId) {
    await answerMentionSafely(ctx, message);
    return;
  }
  if (imagesOf(message, ctx.config.cdnHosts).length === 0) return;
  const source = await watchedSourceOf(message, (guildId, channelId) => ctx.settings.isWatched(guildId, channelId));
  if (!source) return;
  ctx.ingest.push(`message ${message.id}`, async () => {
    const outcome = await indexMessage(ctx.engine, message, downloadPolicy(ctx.config), ctx.log, source);
    if (await ctx.settings.repostNotices(source.channelId)) await noticeRepostsSafely(ctx, message, outcome.ids);
  });
}

/** The mention's own error handling: what went wrong is told in a reply, as interaction-create does for commands. */
async function answerMentionSafely(ctx: BotContext, message: Message): Promise<void> {
  try {
    await searchByImage(ctx, { via: 'mention', message });
  } catch (error) {
    if (!isAppError(error)) ctx.log.error(`mention ${message.id} failed: ${(error as Error).stack ?? error}`);
    await message.reply({ content: errorTextFor(error, message.guildId) }).catch(() => undefined);
  }
}

/** A notice that cannot be sent (no Send Messages there, Discord down) is logged; the image stays indexed. */
async function noticeRepostsSafely(ctx: BotContext, message: Message, ids: number[]): Promise<void> {
  try {
    await noticeReposts(ctx, message, ids);
  } catch (error) {
    ctx.log.warn(`message ${message.id} in channel ${message.channelId}: no repost notice: ${(error as Error).message}`);
  }
}
