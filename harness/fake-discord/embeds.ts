import type { APIEmbed, APIEmbedImage, APIEmbedThumbnail, EmbedType } from 'discord-api-types/v10';
import type { FakeCdn } from './cdn.js';
import { pngSize } from './messages.js';

/** A picture a link points at: its bytes as Discord's media proxy will serve them. */
export interface LinkedPicture {
  /** Where the picture is on the web (never contacted: the fake proxy serves `data`). */
  url: string;
  data: Buffer | Uint8Array;
  /** Default image/png. */
  contentType?: string;
}

export interface LinkEmbedInput {
  /** The link as posted in the message. */
  url: string;
  /**
   * What Discord unfurls it into: `image`, a direct link to a picture (the picture is the embed's `thumbnail`, as on
   * Discord); `article`, a page with an `og:image` (the picture is `image`, and `logo` the `thumbnail`); `video` and
   * `gifv`, a video (the picture is a still in `thumbnail`, beside `video`).
   */
  type: 'image' | 'article' | 'video' | 'gifv';
  picture: LinkedPicture;
  /** `article` only: the site's logo, as its `thumbnail`. */
  logo?: LinkedPicture;
  title?: string;
}

/**
 * The embed Discord makes of a link, shaped like its unfurls: `image`/`thumbnail` carry the picture's own `url`,
 * `proxy_url` on the fake CDN's media proxy, and for PNGs `width`/`height`.
 */
export function linkEmbed(cdn: FakeCdn, input: LinkEmbedInput): APIEmbed {
  const media = (picture: LinkedPicture): APIEmbedImage & APIEmbedThumbnail => {
    const data = Buffer.from(picture.data);
    const proxy_url = cdn.proxyExternal(picture.url, data, picture.contentType ?? 'image/png');
    return { url: picture.url, proxy_url, ...(pngSize(data) ?? {}) };
  };
  const type = input.type as EmbedType;
  const title = input.title === undefined ? {} : { title: input.title };
  switch (input.type) {
    case 'image':
      return { type, url: input.url, thumbnail: media(input.picture) };
    case 'article':
      return { type, url: input.url, ...title, image: media(input.picture), ...(input.logo ? { thumbnail: media(input.logo) } : {}) };
    case 'video':
    case 'gifv':
      return { type, url: input.url, ...title, thumbnail: media(input.picture), video: { url: input.url, width: 640, height: 360 } };
  }
}
