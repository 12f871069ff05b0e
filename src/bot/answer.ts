import {
  type ChatInputCommandInteraction,
  type GuildMember,
  type Message,
  type MessageContextMenuCommandInteraction,
} from 'discord.js';
import { AppError } from '../errors.js';
import type { QueryResult } from '../index/engine.js';
import { channelById, placeOf } from './access.js';
import { answerRules, answerRulesIn, pickView, publicFilter } from './answer-rules.js';
import type { BotContext } from './context.js';
import { editReplyOrPost, followUpPrivately } from './late-answer.js';
import { feedbackStart } from './feedback.js';
import { MAX_RESULTS } from './limits.js';
import { browseHit, CONTROLS, JUDGE, LEFT_OUT, renderResults } from './results.js';
import type { BrowseState } from './settings.js';

export interface AnswerOptions {
  k: number;
  sameChannelOnly: boolean;
  ephemeral: boolean;
}

type QueryInteraction = ChatInputCommandInteraction | MessageContextMenuCommandInteraction;

/** Refuses with a clear answer when the user has asked too often; must run before deferring. */
export function checkQueryRate(ctx: BotContext, userId: string): void {
  const waitMs = ctx.queryLimiter.take(userId);
  if (waitMs > 0) {
    throw new AppError('RATE_LIMITED', `You are searching very often; try again in ${Math.ceil(waitMs / 1000)} s.`);
  }
}

/**
 * The shared answer of /relevant and the context menu: query the guild's namespace with the member's view of
 * the guild, then show results publicly with reaction controls, or privately when they would expose channels
 * not everyone here can read (or when asked).
 */
export async function answerRelevant(ctx: BotContext, interaction: QueryInteraction, bytes: Buffer, options: AnswerOptions): Promise<void> {
  const guild = interaction.guild;
  const channel = guild && interaction.channelId ? await channelById(guild, interaction.channelId) : undefined;
  const member = interaction.member as GuildMember | null;
  const place = channel && placeOf(channel);
  if (!guild || !channel || !place || !member || !('permissionsFor' in channel)) {
    throw new AppError('NOT_PERMITTED', 'Relevant images can only be searched in a server channel.');
  }
  const rules = answerRules(guild, { member, channel, place, sameChannelOnly: options.sameChannelOnly });
  const result = await ctx.engine.query(bytes, { namespace: guild.id, k: options.k, filter: rules.readable });
  let exposes = false;
  if (!options.ephemeral) {
    // Each hit is shown through a post that exposes nothing when it has one; one that has none sends the answer private.
    const hits: QueryResult['hits'] = [];
    for (const hit of result.hits) {
      const record = await ctx.engine.get(hit.record.id, { namespace: guild.id });
      const picked = record && (await pickView(record, rules, hit.record.source));
      if (!picked) continue;
      exposes ||= picked.exposes;
      hits.push({ ...hit, record: picked.view });
    }
    result.hits = hits;
  }
  if (result.hits.length === 0) {
    await editReplyOrPost(ctx, interaction, { content: 'I found no relevant images that you can see here yet.' });
    return;
  }
  const state = firstPage(guild.id, channel.id, interaction.user.id, result, options.ephemeral || exposes);
  const payload = await renderResults(ctx, guild, state);
  const ttl = ctx.config.browseTtlMinutes * 60_000;
  if (exposes) {
    const note = await editReplyOrPost(
      ctx,
      interaction,
      { content: 'Some results come from channels not everyone here can read, so I sent them only to you.' },
      { content: 'Some results come from channels not everyone here can read, and Discord no longer lets me send them only to you (it allows 15 minutes): please search again.' },
    );
    if (note.via !== 'reply') return;
    const followUp = await followUpPrivately(ctx, interaction, payload);
    if (followUp.message) await ctx.settings.saveBrowse(followUp.message.id, state, ttl);
    return;
  }
  const { message } = await editReplyOrPost(ctx, interaction, payload);
  if (!message) return;
  await ctx.settings.saveBrowse(message.id, state, ttl);
  if (!options.ephemeral) await addControls(message);
}

export async function addControls(message: Message): Promise<void> {
  const [previous, next, more, close] = Object.values(CONTROLS);
  for (const emoji of [previous, next, more, JUDGE.like, JUDGE.dislike, close]) await message.react(emoji);
}

/**
 * A reply to "@bot" on a reply to an image: the same query, answered in the channel. Results that would expose
 * channels not everyone here can read are left out of this public answer (with a note pointing at /relevant).
 */
export async function answerMention(ctx: BotContext, message: Message, bytes: Buffer): Promise<void> {
  const guild = message.guild;
  const member = message.member;
  const rules = guild && member ? await answerRulesIn(guild, member, message.channelId) : undefined;
  if (!guild || !rules) return;
  const shown = publicFilter(rules);
  const result = await ctx.engine.query(bytes, { namespace: guild.id, k: MAX_RESULTS, filter: shown.filter });
  if (result.hits.length === 0) {
    await message.reply({ content: 'I found no relevant images I can show here.' });
    return;
  }
  const state = firstPage(guild.id, message.channelId, message.author.id, result, false);
  const payload = await renderResults(ctx, guild, state);
  if (shown.withheld()) payload.content += LEFT_OUT;
  const reply = await message.reply(payload);
  await ctx.settings.saveBrowse(reply.id, state, ctx.config.browseTtlMinutes * 60_000);
  await addControls(reply);
}

/** The browsing state of a fresh answer: its first result shown, the query kept as a thumbnail for re-drawing. */
function firstPage(guildId: string, channelId: string, invokerId: string, result: QueryResult, ephemeral: boolean): BrowseState {
  return {
    guildId,
    channelId,
    invokerId,
    hits: result.hits.map(browseHit),
    position: 0,
    ephemeral,
    queryThumbnail: result.thumbnail?.toString('base64'),
    ...feedbackStart(result),
  };
}
