import type { IncomingMessage, ServerResponse } from 'node:http';

export interface LoggedFile {
  /** The multipart field, `files[n]` as @discordjs/rest names them. */
  field: string;
  filename: string;
  contentType: string;
  data: Buffer;
}

export interface LoggedRequest {
  method: string;
  /** Path below `/api/v10`, without the query. */
  path: string;
  /** The matched route pattern, e.g. `/channels/:channelId/messages`; null for unknown routes. */
  route: string | null;
  params: Record<string, string>;
  query: Record<string, string>;
  authorization: string | undefined;
  /** The JSON body, or the decoded `payload_json` of a multipart body. */
  body: unknown;
  files: LoggedFile[];
  status: number;
  response: unknown;
  at: number;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export interface RouteContext {
  params: Record<string, string>;
  query: URLSearchParams;
  // Request bodies are whatever the client sent; handlers read the fields they need.
  body: any;
  files: LoggedFile[];
}

/** A handler's return value is the JSON body of a 200; `undefined` means 204. */
export type RouteHandler = (context: RouteContext) => unknown;

interface Route {
  method: string;
  pattern: string;
  regex: RegExp;
  names: string[];
  handler: RouteHandler;
}

export interface FaultMatch {
  method?: string;
  /** A route pattern as logged in `LoggedRequest.route`, e.g. `/channels/:channelId/messages`. */
  route?: string;
  /** Or a test on the concrete path. */
  path?: RegExp;
}

interface Fault extends FaultMatch {
  remaining: number;
  respond(response: ServerResponse, route: string): unknown;
}

/** REST faults, consumed in the order they were added; each answers `times` matching requests, then disappears. */
export class RestFaults {
  readonly #faults: Fault[] = [];

  /**
   * A 429 with `Retry-After` (seconds, may be fractional). Per-route limits carry the `X-RateLimit-*` headers
   * @discordjs/rest reads; a global one carries `X-RateLimit-Global`. Never omit `Retry-After`: without it
   * discord.js 14 retries immediately, in a tight loop.
   */
  rateLimit(match: FaultMatch, options: { retryAfter?: number; global?: boolean; times?: number } = {}): void {
    const retryAfter = options.retryAfter ?? 0.25;
    const global = options.global ?? false;
    this.#faults.push({
      ...match,
      remaining: options.times ?? 1,
      respond: (response, route) => {
        const body = { message: 'You are being rate limited.', retry_after: retryAfter, global, code: 0 };
        response.writeHead(429, {
          'content-type': 'application/json',
          'retry-after': String(retryAfter),
          ...(global
            ? { 'x-ratelimit-global': 'true', 'x-ratelimit-scope': 'global' }
            : {
                'x-ratelimit-limit': '5',
                'x-ratelimit-remaining': '0',
                'x-ratelimit-reset-after': String(retryAfter),
                'x-ratelimit-bucket': Buffer.from(route).toString('hex').slice(0, 32),
                'x-ratelimit-scope': 'user',
              }),
        });
        response.end(JSON.stringify(body));
        return body;
      },
    });
  }

  /** A 5xx; @discordjs/rest retries those at once, up to its `retries` option (3). */
  serverError(match: FaultMatch, options: { status?: number; times?: number } = {}): void {
    const status = options.status ?? 500;
    this.#faults.push({
      ...match,
      remaining: options.times ?? 1,
      respond: (response) => {
        const body = { message: `${status}: Internal Server Error`, code: 0 };
        sendJson(response, status, body);
        return body;
      },
    });
  }

  clear(): void {
    this.#faults.length = 0;
  }

  /** Answers the request with the first matching fault; returns the body sent, or undefined when none matched. */
  apply(method: string, path: string, route: string | null, response: ServerResponse): { status: number; body: unknown } | undefined {
    const index = this.#faults.findIndex(
      (fault) =>
        (fault.method === undefined || fault.method.toUpperCase() === method) &&
        (fault.route === undefined || fault.route === route) &&
        (fault.path === undefined || fault.path.test(path)),
    );
    if (index === -1) return undefined;
    const fault = this.#faults[index];
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.#faults.splice(index, 1);
    const body = fault.respond(response, route ?? path);
    return { status: response.statusCode, body };
  }
}

export class Router {
  readonly #routes: Route[] = [];

  add(method: string, pattern: string, handler: RouteHandler): void {
    const names: string[] = [];
    const source = pattern
      .split('/')
      .map((segment) => {
        if (!segment.startsWith(':')) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        names.push(segment.slice(1));
        return '([^/]+)';
      })
      .join('/');
    this.#routes.push({ method, pattern, regex: new RegExp(`^${source}$`), names, handler });
  }

  match(method: string, path: string): { route: Route; params: Record<string, string> } | undefined {
    for (const route of this.#routes) {
      const found = route.method === method ? route.regex.exec(path) : null;
      if (!found) continue;
      const params = Object.fromEntries(route.names.map((name, index) => [name, decodeURIComponent(found[index + 1])]));
      return { route, params };
    }
    return undefined;
  }
}

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** JSON or multipart/form-data (the `payload_json` field plus `files[n]` parts) into a body and files. */
export async function decodeBody(request: IncomingMessage): Promise<{ body: unknown; files: LoggedFile[] }> {
  const raw = await readBody(request);
  const contentType = request.headers['content-type'] ?? '';
  if (raw.length === 0) return { body: undefined, files: [] };
  if (!contentType.startsWith('multipart/form-data')) return { body: JSON.parse(raw.toString('utf8')), files: [] };
  const form = await new Response(raw, { headers: { 'content-type': contentType } }).formData();
  let body: unknown;
  const files: LoggedFile[] = [];
  for (const [field, value] of form) {
    if (typeof value === 'string') {
      if (field === 'payload_json') body = JSON.parse(value);
      continue;
    }
    files.push({ field, filename: value.name, contentType: value.type, data: Buffer.from(await value.arrayBuffer()) });
  }
  return { body, files };
}
