import { createHash } from 'node:crypto';
import type { Embed, Message, PartialMessage } from 'discord.js';

export interface MessageImage {
  url: string;
  /** The attachment id, or `embed:<hash of the picture's link>` for the picture of a link embed. */
  key: string;
}

const IMAGE_NAME = /\.(jpe?g|png|gif|webp|avif|tiff?)$/i;

/**
 * The images a message carries: image attachments, and the picture of each link embed (see `embedPicture`) whose
 * media-proxy URL is on an allowed host.
 */
export function imagesOf(message: Message | PartialMessage, cdnHosts: string[]): MessageImage[] {
  const images: MessageImage[] = [];
  for (const attachment of message.attachments.values()) {
    const typed = attachment.contentType?.startsWith('image/') ?? false;
    if (typed || IMAGE_NAME.test(attachment.name ?? '')) images.push({ url: attachment.url, key: attachment.id });
  }
  for (const embed of message.embeds) {
    const picture = embedPicture(embed, cdnHosts);
    if (picture && !images.some((image) => image.key === picture.key)) images.push(picture);
  }
  return images;
}

/** The URL the message now has for a stored image key; undefined when it no longer carries that image. */
export function currentImageUrl(message: Message, imageKey: string, cdnHosts: string[]): string | undefined {
  if (!imageKey.startsWith('embed')) return message.attachments.get(imageKey)?.url;
  // Stored before embeds were keyed by their link: `embed<n>`, the n-th embed.
  const legacy = /^embed(\d+)$/.exec(imageKey);
  if (legacy) {
    const embed = message.embeds[Number(legacy[1])];
    return embed && embedPicture(embed, cdnHosts)?.url;
  }
  return imagesOf(message, cdnHosts).find((image) => image.key === imageKey)?.url;
}

// A video's picture is a still its host chose (a YouTube thumbnail, a Tenor GIF's first frame), not the art shared.
const MOVING = new Set(['video', 'gifv']);
// Custom emoji and stickers are on Discord's CDN too, and a link to one unfurls into an image embed: not art.
const DISCORD_HOST = /(^|\.)discord(app)?\.(com|net)$/i;
const EMOJI_OR_STICKER = /^\/(emojis|stickers)\//i;
// Discord signs its CDN links with these, and signs them afresh whenever it sends the message.
const SIGNATURE_PARAMS = ['ex', 'is', 'hm'];

/**
 * The one picture of a link embed that is indexed: its image, else its thumbnail (beside an image, the thumbnail is
 * the site's logo or the author's avatar; in an image link's embed it is the image itself). It is downloaded through
 * Discord's media proxy (`proxy_url`), never from the site it was linked from, and only from `cdnHosts`. The key
 * comes from the picture's own link, so an edit that removes one of several embeds removes that one.
 */
export function embedPicture(embed: Embed, cdnHosts: string[]): MessageImage | undefined {
  if (MOVING.has(embed.data.type ?? '') || embed.video) return undefined;
  const media = embed.image ?? embed.thumbnail;
  if (!media?.url) return undefined;
  if ([media.url, media.proxyURL].some((url) => url !== undefined && isEmojiOrSticker(url))) return undefined;
  const url = media.proxyURL ?? media.url;
  if (!onHosts(url, cdnHosts)) return undefined;
  return { url, key: `embed:${createHash('sha256').update(withoutSignature(media.url)).digest('hex').slice(0, 16)}` };
}

function isEmojiOrSticker(raw: string): boolean {
  const url = parse(raw);
  if (!url) return false;
  // The media proxy's path names the proxied link: /external/<signature>/https/cdn.discordapp.com/emojis/….
  const proxied = /^\/external\/[^/]+\/https?\/([^/]+)(\/.*)$/.exec(url.pathname);
  const [host, path] = proxied ? [proxied[1], proxied[2]] : [url.hostname, url.pathname];
  return DISCORD_HOST.test(host) && EMOJI_OR_STICKER.test(path);
}

function withoutSignature(raw: string): string {
  const url = parse(raw);
  if (!url) return raw;
  for (const name of SIGNATURE_PARAMS) url.searchParams.delete(name);
  return url.href;
}

function onHosts(raw: string, hosts: string[]): boolean {
  const url = parse(raw);
  return url !== undefined && (hosts.includes(url.host.toLowerCase()) || hosts.includes(url.hostname.toLowerCase()));
}

function parse(raw: string): URL | undefined {
  try {
    return new URL(raw);
  } catch {
    return undefined;
  }
}
