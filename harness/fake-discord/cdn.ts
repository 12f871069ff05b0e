import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StoredAttachment } from './state.js';

/**
 * Attachment bytes behind signed, expiring URLs shaped like Discord's
 * (`/attachments/<channel>/<attachment>/<name>?ex=<hex>&is=<hex>&hm=<mac>`). Every serialisation of a message signs
 * fresh URLs, as Discord does, so a bot that keeps old URLs instead of ids fails here the way it would in production.
 * Times are hex milliseconds (Discord uses seconds) so tests can expire URLs without waiting. Also the media proxy
 * that serves the pictures of link embeds (`/external/…`, see `proxyExternal`).
 */
export class FakeCdn {
  readonly #secret = randomBytes(16);
  readonly #files = new Map<string, { attachment: StoredAttachment; data: Buffer }>();
  readonly #missing = new Set<string>();
  /** The media proxy's pictures, by the proxied link (`https/<host>/<path>`). */
  readonly #external = new Map<string, { data: Buffer; contentType: string }>();
  #revokedBefore = 0;
  #failures: { status: number; remaining: number } | null = null;
  #hold: { remaining: number; admit(serve: () => void): void } | null = null;
  /** Every CDN request, in order, with the status served. */
  readonly requests: { url: string; status: number }[] = [];

  constructor(
    readonly baseUrl: string,
    public urlLifetimeMs: number,
  ) {}

  store(attachment: StoredAttachment, data: Buffer): void {
    this.#files.set(attachment.id, { attachment, data });
  }

  url(attachment: StoredAttachment): string {
    const issued = Date.now();
    const expires = issued + this.urlLifetimeMs;
    const path = `/attachments/${attachment.channelId}/${attachment.id}/${encodeURIComponent(attachment.filename)}`;
    const query = `ex=${expires.toString(16)}&is=${issued.toString(16)}`;
    return `${this.baseUrl}${path}?${query}&hm=${this.#sign(path, query)}`;
  }

  /**
   * Discord's media proxy for a linked picture, as in a link embed's `proxy_url`
   * (`https://images-ext-1.discordapp.net/external/<signature>/https/<host>/<path>`): from now on it serves `data` as
   * what `link` pointed at when Discord unfurled it. Nothing is ever fetched from `link` itself. Proxy URLs do not
   * expire; a wrong signature or an unknown link answers 404.
   */
  proxyExternal(link: string, data: Buffer, contentType: string): string {
    const target = new URL(link);
    const proxied = `${target.protocol.slice(0, -1)}/${target.host}${target.pathname}${target.search}`;
    this.#external.set(proxied, { data, contentType });
    return `${this.baseUrl}/external/${this.#sign(proxied, '')}/${proxied}`;
  }

  /** Makes every URL handed out so far expired; URLs signed afterwards work. */
  expireIssuedUrls(): void {
    this.#revokedBefore = Date.now() + 1;
  }

  /** The attachment answers 404 from now on, as when its message was deleted. */
  remove(attachmentId: string): void {
    this.#missing.add(attachmentId);
  }

  /** The next `times` CDN requests answer `status`. */
  failNext(times: number, status = 503): void {
    this.#failures = { status, remaining: times };
  }

  /**
   * The next `times` requests get no answer until `release()`: a download slow enough to outlast something (an
   * interaction token), without the test depending on how slow. `reached` resolves when the first one arrives.
   */
  holdNext(times = 1): { reached: Promise<void>; release(): void } {
    let arrived!: () => void;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    const waiting: Array<() => void> = [];
    let released = false;
    this.#hold = {
      remaining: times,
      admit: (serve) => {
        arrived();
        if (released) serve();
        else waiting.push(serve);
      },
    };
    return {
      reached,
      release: () => {
        released = true;
        for (const serve of waiting.splice(0)) serve();
      },
    };
  }

  handle(request: IncomingMessage, response: ServerResponse, path: string): void {
    const hold = this.#hold;
    if (hold && hold.remaining > 0) {
      hold.remaining -= 1;
      if (hold.remaining === 0) this.#hold = null;
      hold.admit(() => this.#answer(request, response, path));
      return;
    }
    this.#answer(request, response, path);
  }

  #answer(request: IncomingMessage, response: ServerResponse, path: string): void {
    const status = this.#serve(path, response);
    this.requests.push({ url: `${this.baseUrl}${path}`, status });
    if (status !== 200) {
      response.writeHead(status, { 'content-type': 'text/plain' });
      response.end(status === 404 ? 'This content is no longer available.' : 'CDN failure');
    }
    request.resume();
  }

  #serve(fullPath: string, response: ServerResponse): number {
    if (this.#failures && this.#failures.remaining > 0) {
      this.#failures.remaining -= 1;
      return this.#failures.status;
    }
    const external = /^\/external\/([0-9a-f]+)\/(.+)$/.exec(fullPath);
    if (external) return this.#serveExternal(external[1], external[2], response);
    const url = new URL(fullPath, 'http://cdn');
    const match = /^\/attachments\/\d+\/(\d+)\/[^/]+$/.exec(url.pathname);
    const file = match ? this.#files.get(match[1]) : undefined;
    if (!match || !file || this.#missing.has(match[1])) return 404;
    const expires = Number.parseInt(url.searchParams.get('ex') ?? '', 16);
    const issued = Number.parseInt(url.searchParams.get('is') ?? '', 16);
    const query = `ex=${url.searchParams.get('ex')}&is=${url.searchParams.get('is')}`;
    const signed = url.searchParams.get('hm') === this.#sign(url.pathname, query);
    if (!signed || !(expires > Date.now()) || !(issued >= this.#revokedBefore)) return 404;
    response.writeHead(200, { 'content-type': file.attachment.contentType, 'content-length': file.data.length });
    response.end(file.data);
    return 200;
  }

  #serveExternal(signature: string, proxied: string, response: ServerResponse): number {
    const picture = this.#external.get(proxied);
    if (!picture || signature !== this.#sign(proxied, '')) return 404;
    response.writeHead(200, { 'content-type': picture.contentType, 'content-length': picture.data.length });
    response.end(picture.data);
    return 200;
  }

  #sign(path: string, query: string): string {
    return createHmac('sha256', this.#secret).update(`${path}?${query}`).digest('hex').slice(0, 32);
  }
}
