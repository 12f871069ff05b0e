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
import { channelById } from './access.js';
import type { ImageRecord } from '../index/store.js';
import type { BotContext } from './context.js';
import type { BrowseState } from './settings.js';

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

/** The message's own channel: the thread, for an image posted in a thread or forum post. */
function postedIn(record: ImageRecord): string | undefined {
  return record.extra?.threadId ?? record.extra?.channelId;
}

export function jumpLink(record: ImageRecord): string | undefined {
  const { guildId, messageId } = record.extra ?? {};
  const channelId = postedIn(record);
  return guildId && channelId && messageId ? `https://discord.com/channels/${guildId}/${channelId}/${messageId}` : undefined;
}

/**
 * The result message: an overview collage of every result (numbered like the card) and a card for the result at
 * `state.position` showing the image itself, its score, author, channel, date and a link to the original.
 */
export async function renderResults(ctx: BotContext, guild: Guild, state: BrowseState): Promise<ResultPayload> {
  const namespace = state.guildId;
  const hit = state.hits[state.position];
  const record = await ctx.engine.get(hit.id, { namespace });
  const thumbnails = await Promise.all(state.hits.map((h) => ctx.engine.thumbnail(h.id, { namespace })));
  const collage = await renderCollage(
    { bytes: state.queryThumbnail ? Buffer.from(state.queryThumbnail, 'base64') : undefined, caption: 'query' },
    state.hits.map((h, i) => ({ bytes: thumbnails[i], caption: h.score.toFixed(3) })),
  );
  const files = [new AttachmentBuilder(collage, { name: 'relevant.jpg' })];
  const card = new EmbedBuilder()
    .setTitle(`Result ${state.position + 1} of ${state.hits.length} · score ${hit.score.toFixed(3)}`)
    .setFooter({ text: `${CONTROLS.previous} ${CONTROLS.next} browse · ${CONTROLS.more} more like this · ${CONTROLS.close} close` });
  if (record) {
    const link = jumpLink(record);
    if (link) card.setURL(link);
    const { authorId, channelId, postedAt } = record.extra ?? {};
    if (authorId) card.addFields({ name: 'Posted by', value: `<@${authorId}>`, inline: true });
    if (channelId) card.addFields({ name: 'Channel', value: `<#${channelId}>`, inline: true });
    if (postedAt) card.addFields({ name: 'Date', value: `<t:${Math.floor(Date.parse(postedAt) / 1000)}:f>`, inline: true });
    const url = await currentImageUrl(guild, record);
    if (url) {
      card.setImage(url);
    } else if (thumbnails[state.position]) {
      files.push(new AttachmentBuilder(thumbnails[state.position]!, { name: 'result.webp' }));
      card.setImage('attachment://result.webp');
    }
  }
  const records = await Promise.all(state.hits.map((h) => ctx.engine.get(h.id, { namespace })));
  // Numbered like the collage's tiles, so "the 7th one" is one click away.
  const index = state.hits.map((h, i) => {
    const link = records[i] && jumpLink(records[i]!);
    return link ? `[${i + 1}](${link}) ${h.score.toFixed(2)}` : `${i + 1} ${h.score.toFixed(2)}`;
  });
  const overview = new EmbedBuilder().setDescription(index.join(' · ')).setImage('attachment://relevant.jpg');
  return {
    content: `The ${state.hits.length} most relevant images I can show you here:`,
    embeds: [card, overview],
    files,
    components: state.ephemeral ? [buttons()] : [],
  };
}

/** Attachment URLs expire, so the card asks Discord for the message again to get a live one. */
async function currentImageUrl(guild: Guild, record: ImageRecord): Promise<string | undefined> {
  const { messageId, imageKey } = record.extra ?? {};
  const channelId = postedIn(record);
  if (!channelId || !messageId || !imageKey) return undefined;
  const channel = await channelById(guild, channelId);
  if (!channel || !channel.isTextBased()) return undefined;
  try {
    const message = await channel.messages.fetch(messageId);
    if (imageKey.startsWith('embed')) return message.embeds[Number(imageKey.slice(5))]?.image?.url ?? undefined;
    return message.attachments.get(imageKey)?.url;
  } catch {
    return undefined;
  }
}

function buttons(): ActionRowBuilder<MessageActionRowComponentBuilder> {
  return new ActionRowBuilder<MessageActionRowComponentBuilder>().addComponents(
    (Object.keys(CONTROLS) as BrowseAction[]).map((action) =>
      new ButtonBuilder().setCustomId(`browse:${action}`).setEmoji(CONTROLS[action]).setStyle(action === 'close' ? ButtonStyle.Danger : ButtonStyle.Secondary),
    ),
  );
}
