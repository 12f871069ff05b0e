import type { Guild } from 'discord.js';
import { answerRulesIn, pickView, publicFilter, type AnswerRules } from './answer-rules.js';
import type { BotContext } from './context.js';
import { checkEnabled } from './privacy-checks.js';
import { browseHit, LEFT_OUT, renderResults, type BrowseAction, type ResultPayload } from './results.js';
import type { BrowseState } from './settings.js';

export type BrowseOutcome = { kind: 'ignored' } | { kind: 'closed' } | { kind: 'updated'; payload: ResultPayload };

/**
 * The rules of a result message as they stand now. Permissions change at any time and a message stays browsable
 * for BROWSE_TTL_MINUTES, so they are worked out again for every page: the asker's roles fresh from Discord (the
 * bot is not told of role changes), the channels' overwrites as the gateway last sent them. A private message
 * exposes nothing.
 */
export async function rulesNow(guild: Guild, state: BrowseState): Promise<AnswerRules | undefined> {
  const member = await guild.members.fetch({ user: state.invokerId, force: true }).catch(() => null);
  const rules = member && (await answerRulesIn(guild, member, state.channelId));
  if (!rules) return undefined;
  return state.ephemeral ? { readable: rules.readable, exposes: async () => false } : rules;
}

/**
 * The stored hits that may still be shown, each through a post that may be shown now (the one shown so far if it
 * still may), and where the shown one is (or would be) among them.
 */
export async function stillShowable(ctx: BotContext, state: BrowseState, rules: AnswerRules): Promise<{ hits: BrowseState['hits']; position: number; shownKept: boolean }> {
  const hits: BrowseState['hits'] = [];
  let position = 0;
  let shownKept = false;
  for (const [index, hit] of state.hits.entries()) {
    if (index === state.position) position = hits.length;
    let kept = hit;
    if (checkEnabled('recheck-pages')) {
      const record = await ctx.engine.get(hit.id, { namespace: state.guildId });
      const picked = record && (await pickView(record, rules, hit.source));
      if (!picked || picked.exposes) continue;
      kept = { ...hit, source: picked.view.source };
    }
    if (index === state.position) shownKept = true;
    hits.push(kept);
  }
  return { hits, position, shownKept };
}

/**
 * Applies one control to a result message. Only the person who asked may browse. Every page shows only what may
 * be shown now; 🔎 re-queries with the shown result, as that person, with the rules of a first answer (on a public
 * message, results that would expose a channel to people who cannot read it are left out, with a note).
 */
export async function applyBrowse(ctx: BotContext, guild: Guild, messageId: string, userId: string, action: BrowseAction): Promise<BrowseOutcome> {
  const state = await ctx.settings.browse(messageId);
  if (!state || state.invokerId !== userId || state.guildId !== guild.id) return { kind: 'ignored' };
  if (action === 'close') {
    await ctx.settings.endBrowse(messageId);
    return { kind: 'closed' };
  }
  const rules = await rulesNow(guild, state);
  const kept = rules && (await stillShowable(ctx, state, rules));
  if (!rules || !kept || kept.hits.length === 0) {
    await ctx.settings.endBrowse(messageId);
    return { kind: 'updated', payload: { content: 'None of these results can be shown here any more.', embeds: [], files: [], components: [] } };
  }
  let withheld = () => false;
  if (action === 'previous' || action === 'next') {
    const count = kept.hits.length;
    // A shown result that may no longer be shown is skipped: ➡️ goes to the one after it, ⬅️ to the one before.
    const from = action === 'next' ? kept.position + (kept.shownKept ? 1 : 0) : kept.position - 1;
    state.hits = kept.hits;
    state.position = (from + count) % count;
  } else {
    if (!kept.shownKept) return { kind: 'ignored' };
    const shown = state.hits[state.position];
    const more = publicFilter(rules, checkEnabled('audience-on-more'));
    const result = await ctx.engine.query({ id: shown.id }, { namespace: guild.id, k: state.hits.length, filter: more.filter });
    withheld = more.withheld;
    if (result.hits.length === 0) return { kind: 'ignored' };
    state.queryThumbnail = (await ctx.engine.thumbnail(shown.id, { namespace: guild.id }))?.toString('base64');
    state.hits = result.hits.map(browseHit);
    state.position = 0;
    // The shown result is the new query: judgements of the old one no longer apply.
    Object.assign(state, { query: { id: shown.id }, key: result.key, liked: undefined, disliked: undefined });
  }
  await ctx.settings.saveBrowse(messageId, state, ctx.config.browseTtlMinutes * 60_000);
  const payload = await renderResults(ctx, guild, state);
  if (withheld()) payload.content += LEFT_OUT;
  return { kind: 'updated', payload };
}
