import type { Guild } from 'discord.js';
import type { QueryResult } from '../index/engine.js';
import { decodeFloat16, encodeFloat16 } from '../util/float16.js';
import { publicFilter } from './answer-rules.js';
import { rulesNow, stillShowable, type BrowseOutcome } from './browse.js';
import type { BotContext } from './context.js';
import { checkEnabled } from './privacy-checks.js';
import { browseHit, JUDGE, LEFT_OUT, renderResults, type Judge } from './results.js';
import type { BrowseState } from './settings.js';

export function judgeOfEmoji(emoji: string | null): Judge | undefined {
  return (Object.keys(JUDGE) as Judge[]).find((judge) => JUDGE[judge] === emoji);
}

/** What a fresh answer keeps so that 👍/👎 can re-rank it: the stored query image, else the query's features. */
export function feedbackStart(result: QueryResult): Pick<BrowseState, 'query' | 'key'> {
  return { query: result.self ? { id: result.self.id } : { f16: encodeFloat16(result.features).toString('base64') }, key: result.key };
}

/**
 * The asker marks the result on the card 👍 or 👎: the judgement is stored in the guild's feedback (with the
 * query, the result and the key it came from, which a running style trial counts) and the answer is re-ranked at once, Rocchio with everything judged on
 * this query so far. Only the asker may judge, only a result they may still be shown, and the new results obey the
 * rules of 🔎: on a public message nothing that would expose a channel to people there who cannot read it.
 */
export async function applyJudgement(ctx: BotContext, guild: Guild, messageId: string, userId: string, judge: Judge): Promise<BrowseOutcome> {
  const state = await ctx.settings.browse(messageId);
  if (!(judge in JUDGE) || !state?.query || state.invokerId !== userId || state.guildId !== guild.id) return { kind: 'ignored' };
  const rules = await rulesNow(guild, state);
  const kept = rules && (await stillShowable(ctx, state, rules));
  if (!rules || !kept?.shownKept) return { kind: 'ignored' };
  const judged = state.hits[state.position].id;
  const query = 'id' in state.query ? { id: state.query.id } : { features: decodeFloat16(Buffer.from(state.query.f16, 'base64')) };
  const key = state.hits[state.position].key ?? state.key ?? 'raw';
  const { stored } = await ctx.engine.judge({ asker: userId, query, result: judged, sign: judge === 'like' ? 1 : -1, key }, { namespace: guild.id });
  if (!stored) return { kind: 'ignored' };
  const others = (ids: number[] | undefined) => (ids ?? []).filter((id) => id !== judged);
  state.liked = [...others(state.liked), ...(judge === 'like' ? [judged] : [])];
  state.disliked = [...others(state.disliked), ...(judge === 'dislike' ? [judged] : [])];
  const shown = publicFilter(rules, checkEnabled('audience-on-feedback'));
  const result = await ctx.engine.query(query, {
    namespace: guild.id,
    k: state.hits.length,
    filter: shown.filter,
    feedback: { liked: state.liked, disliked: state.disliked },
  });
  if (result.hits.length === 0) return { kind: 'ignored' };
  state.hits = result.hits.map(browseHit);
  state.key = result.key;
  // The card moves on to the best result not judged yet, so judging one after another needs no page turns.
  const seen = new Set([...state.liked, ...state.disliked]);
  state.position = Math.max(0, state.hits.findIndex((hit) => !seen.has(hit.id)));
  await ctx.settings.saveBrowse(messageId, state, ctx.config.browseTtlMinutes * 60_000);
  const payload = await renderResults(ctx, guild, state);
  if (shown.withheld()) payload.content += LEFT_OUT;
  return { kind: 'updated', payload };
}
