import { DiscordAPIError, RESTJSONErrorCodes, type Message, type PartialMessage } from 'discord.js';
import type { BotContext } from '../bot/context.js';
import { downloadPolicy } from '../bot/download-policy.js';
import { indexMessage, watchedSourceOf } from '../bot/ingest.js';
import { imagesOf } from '../bot/message-images.js';

/**
 * A message was edited. Attachments (or image embeds) it no longer carries lose their references at once, as a
 * deletion would; images it newly carries are indexed if its channel is watched (or, for a thread or forum post,
 * its parent is). Images it kept are not downloaded again.
 */
export async function onMessageUpdate(ctx: BotContext, _old: Message | PartialMessage, updated: Message | PartialMessage): Promise<void> {
  const guildId = updated.guildId;
  if (!guildId) return;
  let message: Message;
  try {
    message = updated.partial ? await updated.fetch() : updated;
  } catch (error) {
    if (!(error instanceof DiscordAPIError && error.code === RESTJSONErrorCodes.UnknownMessage)) throw error;
    const removed = await ctx.engine.removeByRef(updated.id, { namespace: guildId });
    if (removed.length > 0) ctx.log.info(`message ${updated.id} edited, then deleted: ${removed.length} image reference(s) removed`);
    return;
  }
  if (message.author.bot) return;
  const current = new Set(imagesOf(message, ctx.config.cdnHosts).map((image) => image.key));
  const known = await ctx.engine.findByRef(message.id, { namespace: guildId });
  const dropped = (view: { extra?: Record<string, string> }) => !current.has(view.extra?.imageKey ?? '');
  if (known.some(dropped)) {
    const removed = await ctx.engine.removeByRef(message.id, { namespace: guildId, where: dropped });
    ctx.log.info(`message ${message.id} edited: ${removed.length} image reference(s) it no longer carries removed`);
  }
  const knownKeys = new Set(known.map((view) => view.extra?.imageKey));
  const added = new Set([...current].filter((key) => !knownKeys.has(key)));
  if (added.size === 0) return;
  const source = await watchedSourceOf(message, (guild, channel) => ctx.settings.isWatched(guild, channel));
  if (!source) return;
  ctx.ingest.push(`edited message ${message.id}`, async () => {
    await indexMessage(ctx.engine, message, downloadPolicy(ctx.config), ctx.log, source, added);
  });
}
