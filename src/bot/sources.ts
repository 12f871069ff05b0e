import { DiscordAPIError, RESTJSONErrorCodes, type Guild } from 'discord.js';
import type { ImageRecord } from '../index/store.js';
import { channelById, postedIn } from './access.js';
import type { BotContext } from './context.js';
import { currentImageUrl } from './message-images.js';

/** What Discord says about the post a stored reference points at. */
export type SourceCheck = { state: 'live'; url?: string } | { state: 'gone' } | { state: 'unknown' };

const CHECKS_AT_ONCE = 4;

/**
 * Asks Discord for the post `view` (an image seen through one reference) comes from: a live URL of the attachment
 * or of the link embed's picture through the media proxy (stored ones expire), or, when the message answers 10008
 * Unknown Message or no longer carries the attachment or embed (deleted or edited while the bot was away or could
 * not see it), removes that reference from the store at once. A message the client has cached is not fetched
 * again: gateway events keep the cache current.
 */
export async function checkSource(ctx: BotContext, guild: Guild, view: ImageRecord): Promise<SourceCheck> {
  const { messageId, imageKey } = view.extra ?? {};
  const channelId = postedIn(view);
  if (!channelId || !messageId || !imageKey) return { state: 'unknown' };
  const channel = await channelById(guild, channelId);
  if (!channel || !channel.isTextBased()) return { state: 'unknown' };
  let message;
  try {
    message = await channel.messages.fetch(messageId);
  } catch (error) {
    if (!(error instanceof DiscordAPIError && error.code === RESTJSONErrorCodes.UnknownMessage)) return { state: 'unknown' };
    const removed = await ctx.engine.removeByRef(messageId, { namespace: guild.id });
    ctx.log.info(`message ${messageId} in channel ${channelId} no longer exists: ${removed.length} image reference(s) removed`);
    return { state: 'gone' };
  }
  const url = currentImageUrl(message, imageKey, ctx.config.cdnHosts);
  if (url) return { state: 'live', url };
  const removed = await ctx.engine.removeByRef(messageId, { namespace: guild.id, where: (v) => v.extra?.imageKey === imageKey });
  ctx.log.info(`message ${messageId} no longer carries image ${imageKey}: ${removed.length} image reference(s) removed`);
  return { state: 'gone' };
}

/** `checkSource` for many views, a few at a time (one REST call each unless cached). */
export async function checkSources(ctx: BotContext, guild: Guild, views: Array<ImageRecord | undefined>): Promise<SourceCheck[]> {
  const out: SourceCheck[] = new Array(views.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < views.length; i = next++) {
      const view = views[i];
      out[i] = view ? await checkSource(ctx, guild, view) : { state: 'gone' };
    }
  };
  await Promise.all(Array.from({ length: Math.min(CHECKS_AT_ONCE, views.length) }, worker));
  return out;
}
