import {
  ActionRowBuilder,
  AttachmentBuilder,
  ButtonBuilder,
  ButtonStyle,
  EmbedBuilder,
  type Guild,
  type MessageActionRowComponentBuilder,
} from 'discord.js';
import { renderCollage } from '../collage.js';
import type { Hit } from '../index/engine.js';
import { throughReference, type ImageRecord } from '../index/store.js';
import { postedIn } from './access.js';
import type { BotContext } from './context.js';
import type { BrowseState } from './settings.js';
import { checkSources } from './sources.js';

/** 👍/👎 (src/bot/feedback.ts); kept beside the controls so the buttons and the footer name them the same way. */
export const JUDGE = { like: '👍', dislike: '👎' } as const;
export type Judge = keyof typeof JUDGE;

export const CONTROLS = { previous: '⬅️', next: '➡️', more: '🔎', close: '❌' } as const;
export type BrowseAction = keyof typeof CONTROLS;

export function actionOfEmoji(emoji: string | null): BrowseAction | undefined {
  return (Object.keys(CONTROLS) as BrowseAction[]).find((action) => CONTROLS[action] === emoji);
}

export interface ResultPayload {
  content: string;
  embeds: EmbedBuilder[];
  files: AttachmentBuilder[];
  components: Array<ActionRowBuilder<MessageActionRowComponentBuilder>>;
}

/** Appended to a public answer that left out results not everyone in its channel may see. */
export const LEFT_OUT = '\n(Some results from channels not everyone here can read were left out: use `/relevant private:true` to see them.)';

export function jumpLink(record: ImageRecord): string | undefined {
  const { guildId, messageId } = record.extra ?? {};
  const channelId = postedIn(record);
  return guildId && channelId && messageId ? `https://discord.com/channels/${guildId}/${channelId}/${messageId}` : undefined;
}

/** A hit as the browsing state keeps it: the image, its score and the post it was found through. */
export function browseHit(hit: Hit): BrowseState['hits'][number] {
  return { id: hit.record.id, score: hit.score, source: hit.record.source, ...(hit.key === undefined ? {} : { key: hit.key }) };
}

/**
 * The result message: an overview collage of every result (numbered like the card) and a card for the result at
 * `state.position` showing the image itself, its score, author, channel, date and a link to the original. Each
 * result is shown through the post it was found through (the one the asker could read). Before anything is shown,
 * every result's post is checked with Discord: results whose post or attachment is gone are removed from the store
 * and dropped from `state`.
 */
export async function renderResults(ctx: BotContext, guild: Guild, state: BrowseState): Promise<ResultPayload> {
  const namespace = state.guildId;
  const records = await Promise.all(state.hits.map((h) => ctx.engine.get(h.id, { namespace })));
  const views = records.map((record, i) => record && shownReference(record, state.hits[i].source));
  const checks = await checkSources(ctx, guild, views);
  const shown = state.hits[state.position];
  const live = state.hits.flatMap((hit, i) => (checks[i].state === 'gone' ? [] : [{ hit, view: views[i]!, check: checks[i] }]));
  if (live.length < state.hits.length) {
    state.hits = live.map((l) => l.hit);
    state.position = Math.max(0, state.hits.indexOf(shown));
  }
  if (live.length === 0) return { content: 'The images I found have been deleted from Discord meanwhile; please search again.', embeds: [], files: [], components: [] };
  const current = live[state.position];
  const thumbnails = await Promise.all(live.map((l) => ctx.engine.thumbnail(l.hit.id, { namespace })));
  // Judged results stay marked as such wherever they appear after a re-ranking.
  const mark = (id: number, emoji: boolean) =>
    state.liked?.includes(id) ? (emoji ? '👍 ' : 'liked ') : state.disliked?.includes(id) ? (emoji ? '👎 ' : 'disliked ') : '';
  const collage = await renderCollage(
    { bytes: state.queryThumbnail ? Buffer.from(state.queryThumbnail, 'base64') : undefined, caption: 'query' },
    live.map((l, i) => ({ bytes: thumbnails[i], caption: `${mark(l.hit.id, false)}${l.hit.score.toFixed(3)}` })),
  );
  const files = [new AttachmentBuilder(collage, { name: 'relevant.jpg' })];
  const card = new EmbedBuilder()
    .setTitle(`${mark(current.hit.id, true)}Result ${state.position + 1} of ${live.length} · score ${current.hit.score.toFixed(3)}`)
    .setFooter({ text: `${CONTROLS.previous} ${CONTROLS.next} browse · ${CONTROLS.more} more like this · ${JUDGE.like} ${JUDGE.dislike} judge this one · ${CONTROLS.close} close` });
  const link = jumpLink(current.view);
  if (link) card.setURL(link);
  const { authorId, postedAt } = current.view.extra ?? {};
  const channelId = postedIn(current.view);
  if (authorId) card.addFields({ name: 'Posted by', value: `<@${authorId}>`, inline: true });
  if (channelId) card.addFields({ name: 'Channel', value: `<#${channelId}>`, inline: true });
  if (postedAt) card.addFields({ name: 'Date', value: `<t:${Math.floor(Date.parse(postedAt) / 1000)}:f>`, inline: true });
  const url = current.check.state === 'live' ? current.check.url : undefined;
  if (url) {
    card.setImage(url);
  } else if (thumbnails[state.position]) {
    files.push(new AttachmentBuilder(thumbnails[state.position]!, { name: 'result.webp' }));
    card.setImage('attachment://result.webp');
  }
  // Numbered like the collage's tiles, so "the 7th one" is one click away.
  const index = live.map((l, i) => {
    const target = jumpLink(l.view);
    const label = `${mark(l.hit.id, true)}${l.hit.score.toFixed(2)}`;
    return target ? `[${i + 1}](${target}) ${label}` : `${i + 1} ${label}`;
  });
  const overview = new EmbedBuilder().setDescription(index.join(' · ')).setImage('attachment://relevant.jpg');
  return {
    content: `The ${live.length} most relevant images I can show you here:`,
    embeds: [card, overview],
    files,
    components: state.ephemeral ? [buttons(), judgeButtons()] : [],
  };
}

/**
 * The reference a hit is shown through: the one it was found through. A state saved before hits named their
 * reference shows the first; one whose reference has gone shows nothing (another post may be one the asker cannot
 * read).
 */
function shownReference(record: ImageRecord, source: string | undefined): ImageRecord | undefined {
  const reference = source === undefined ? record.refs[0] : record.refs.find((r) => r.source === source);
  return reference && throughReference(record, reference);
}

function buttons(): ActionRowBuilder<MessageActionRowComponentBuilder> {
  return new ActionRowBuilder<MessageActionRowComponentBuilder>().addComponents(
    (Object.keys(CONTROLS) as BrowseAction[]).map((action) =>
      new ButtonBuilder().setCustomId(`browse:${action}`).setEmoji(CONTROLS[action]).setStyle(action === 'close' ? ButtonStyle.Danger : ButtonStyle.Secondary),
    ),
  );
}

/** A second row: a private message takes buttons, not reactions, and a row holds at most five. */
function judgeButtons(): ActionRowBuilder<MessageActionRowComponentBuilder> {
  return new ActionRowBuilder<MessageActionRowComponentBuilder>().addComponents(
    (Object.keys(JUDGE) as Judge[]).map((judge) => new ButtonBuilder().setCustomId(`judge:${judge}`).setEmoji(JUDGE[judge]).setStyle(ButtonStyle.Secondary)),
  );
}
