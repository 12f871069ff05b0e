import type { Guild, GuildBasedChannel, GuildMember } from 'discord.js';
import { resultFilter } from './access.js';
import type { BotContext } from './context.js';
import { browseHit, renderResults, type BrowseAction, type ResultPayload } from './results.js';

export type BrowseOutcome = { kind: 'ignored' } | { kind: 'closed' } | { kind: 'updated'; payload: ResultPayload };

/**
 * Applies one control to a result message. Only the person who asked may browse; 🔎 re-queries with the shown
 * result, as that person, with the same permission filter as the first answer.
 */
export async function applyBrowse(ctx: BotContext, guild: Guild, messageId: string, userId: string, action: BrowseAction): Promise<BrowseOutcome> {
  const state = await ctx.settings.browse(messageId);
  if (!state || state.invokerId !== userId || state.guildId !== guild.id) return { kind: 'ignored' };
  if (action === 'close') {
    await ctx.settings.endBrowse(messageId);
    return { kind: 'closed' };
  }
  if (action === 'previous' || action === 'next') {
    const step = action === 'next' ? 1 : -1;
    state.position = (state.position + step + state.hits.length) % state.hits.length;
  } else {
    const member: GuildMember = await guild.members.fetch(userId);
    const channel = guild.channels.cache.get(state.channelId) as GuildBasedChannel | undefined;
    if (!channel) return { kind: 'ignored' };
    const shown = state.hits[state.position];
    const result = await ctx.engine.query({ id: shown.id }, { namespace: guild.id, k: state.hits.length, filter: resultFilter(guild, { member, channel }) });
    if (result.hits.length === 0) return { kind: 'ignored' };
    state.queryThumbnail = (await ctx.engine.thumbnail(shown.id, { namespace: guild.id }))?.toString('base64');
    state.hits = result.hits.map(browseHit);
    state.position = 0;
  }
  await ctx.settings.saveBrowse(messageId, state, ctx.config.browseTtlMinutes * 60_000);
  return { kind: 'updated', payload: await renderResults(ctx, guild, state) };
}
