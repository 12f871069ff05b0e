import type { Guild, Message } from 'discord.js';
import type { NearDuplicate } from '../index/engine.js';
import type { ImageRecord } from '../index/store.js';
import { answerRulesIn } from './answer-rules.js';
import type { BotContext } from './context.js';
import { jumpLink } from './results.js';
import { checkSources } from './sources.js';

/** Links in one repost notice: enough to find the earlier post, not a wall of links. */
export const NOTICE_LINKS = 3;
/** Earlier posts listed by /reposts. */
export const ANSWER_POSTS = 10;

/** One earlier post: its jump link and how similar the image is (1 for the same file). */
export interface EarlierPost {
  link: string;
  score: number;
  messageId: string;
}

/**
 * Earlier posts of the same picture as `input` (one entry per message, most similar first), each accepted by
 * `filter`, that still exist in Discord (a post deleted while the bot was away is removed now, not linked to).
 */
export async function earlierPosts(
  ctx: BotContext,
  guild: Guild,
  inputs: Array<Uint8Array | { id: number }>,
  filter: (view: ImageRecord) => Promise<boolean>,
  limit: number,
): Promise<EarlierPost[]> {
  const found: NearDuplicate[] = [];
  for (const input of inputs) found.push(...(await ctx.engine.nearDuplicates(input, { namespace: guild.id, limit: limit * 2, filter })));
  found.sort((a, b) => b.score - a.score);
  const seen = new Set<string>();
  const unique = found.filter(({ record }) => {
    const id = record.extra?.messageId;
    if (!id || seen.has(id)) return false;
    seen.add(id);
    return true;
  });
  const checks = await checkSources(ctx, guild, unique.map((d) => d.record));
  const out: EarlierPost[] = [];
  for (const [i, { record, score }] of unique.entries()) {
    const link = jumpLink(record);
    if (checks[i].state === 'gone' || !link) continue;
    out.push({ link, score, messageId: record.extra!.messageId });
    if (out.length === limit) break;
  }
  return out;
}

export function describePosts(posts: EarlierPost[]): string {
  // Only the stored image itself scores exactly 1; three decimals, capped, so a close copy never reads as 1.000.
  return posts.map((p) => `- ${p.link} (${p.score === 1 ? 'the same file' : `similarity ${Math.min(p.score, 0.999).toFixed(3)}`})`).join('\n');
}

/**
 * After a live post in a channel with repost notices: replies once, with at most NOTICE_LINKS links, when its images
 * were posted before where the poster can read them and where everyone who can read this channel can too (the
 * reply is seen by all of them). Never for history: backfill does not come here.
 */
export async function noticeReposts(ctx: BotContext, message: Message, ids: number[]): Promise<void> {
  const guild = message.guild;
  if (!guild || ids.length === 0) return;
  const member = message.member ?? (await guild.members.fetch(message.author.id).catch(() => null));
  const rules = member && (await answerRulesIn(guild, member, message.channelId));
  if (!rules) return;
  const posted = BigInt(message.id);
  const filter = async (view: ImageRecord) => {
    const id = view.extra?.messageId;
    // Earlier posts only: the message's own images, and anything posted after it, are not what it reposts.
    if (!id || BigInt(id) >= posted) return false;
    return (await rules.readable(view)) && !(await rules.exposes(view));
  };
  const posts = await earlierPosts(ctx, guild, ids.map((id) => ({ id })), filter, NOTICE_LINKS);
  if (posts.length === 0) return;
  await message.reply({
    content: `This was posted before:\n${describePosts(posts)}`,
    allowedMentions: { parse: [], repliedUser: false },
  });
  ctx.log.info(`message ${message.id} in channel ${message.channelId}: repost notice with ${posts.length} earlier post(s)`);
}
