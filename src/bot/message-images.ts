import type { Message, PartialMessage } from 'discord.js';

export interface MessageImage {
  url: string;
  /** The attachment id, or `embed<n>` for an image embed. */
  key: string;
}

const IMAGE_NAME = /\.(jpe?g|png|gif|webp|avif|tiff?)$/i;

/** The images a message carries: image attachments, and image embeds whose URL is on an allowed CDN host. */
export function imagesOf(message: Message | PartialMessage, cdnHosts: string[]): MessageImage[] {
  const images: MessageImage[] = [];
  for (const attachment of message.attachments.values()) {
    const typed = attachment.contentType?.startsWith('image/') ?? false;
    if (typed || IMAGE_NAME.test(attachment.name ?? '')) images.push({ url: attachment.url, key: attachment.id });
  }
  message.embeds.forEach((embed, i) => {
    const url = embed.image?.url ?? embed.thumbnail?.url;
    if (url && onHosts(url, cdnHosts)) images.push({ url, key: `embed${i}` });
  });
  return images;
}

function onHosts(url: string, hosts: string[]): boolean {
  try {
    const parsed = new URL(url);
    return hosts.includes(parsed.host.toLowerCase()) || hosts.includes(parsed.hostname.toLowerCase());
  } catch {
    return false;
  }
}
