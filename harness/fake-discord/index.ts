/**
 * A local fake Discord (REST + gateway + CDN on one 127.0.0.1 port) that the real discord.js client talks to.
 *
 * Pitfalls measured with discord.js 14.28 / @discordjs/rest 2.6 / @discordjs/ws 1.2, and how this harness meets them:
 * - `client.login()` resolves once the shards are connected, before the `clientReady` event: wait for the event
 *   (`loginToFake` in ./client.ts does).
 * - Point the client here with `rest: { api: fake.apiUrl }`; @discordjs/rest appends `/v10`, so REST lives under
 *   `/api/v10`. The gateway URL comes from `GET /gateway/bot` (a `ws://` URL; the client adds `?v=10&encoding=json`,
 *   and no compression as long as zlib-sync is not installed) and RESUME goes to READY's `resume_gateway_url`.
 * - The identify throttle (5 s per bucket, and `max_concurrency` does not help a single shard) is skipped with the
 *   `ws.buildIdentifyThrottler` client option (`fake.clientOptions()`); it matters on a re-IDENTIFY after an
 *   invalid session.
 * - READY must carry `application` ({ id, flags }) or the client never becomes ready; GUILD_CREATE must carry
 *   `channels`, the @everyone role (id = guild id) and the bot's own member, or permission checks throw.
 * - INTERACTION_CREATE must carry `entitlements`, `authorizing_integration_owners`, the `channel` object and
 *   `data.resolved.attachments` for attachment options; `member.permissions` and `app_permissions` are computed
 *   from roles and overwrites here, as Discord does.
 * - Reactions on messages the client has not cached only arrive with `Partials.Message` and `Partials.Reaction`.
 * - A 429 without `Retry-After` makes @discordjs/rest retry in a tight loop; every 429 here sends it (seconds),
 *   with `X-RateLimit-*` headers on per-route limits and `X-RateLimit-Global` on global ones.
 * - Close code 4000 makes the client RESUME after ~500 ms. `client.destroy()` during that wait does not cancel it:
 *   the shard reconnects and resumes anyway, then retries forever once the fake is closed and the test process
 *   never exits. Wait for `fake.waitForResume()` before `client.destroy()`.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ApplicationCommandType,
  ComponentType,
  GatewayDispatchEvents,
  InteractionType,
  MessageFlags,
  type APIApplicationCommand,
  type APIApplicationCommandInteractionDataOption,
  type APIChatInputApplicationCommandInteraction,
  type APIInteractionDataResolvedChannel,
  type APIMessage,
  type APIMessageApplicationCommandInteraction,
  type APIMessageComponentInteraction,
} from 'discord-api-types/v10';
import type { ClientOptions } from 'discord.js';
import { FakeCdn } from './cdn.js';
import { fakeClientOptions } from './client.js';
import { dmCommandInteraction } from './dm.js';
import { FakeGateway } from './gateway.js';
import { RestFaults, sendJson, type LoggedRequest } from './http.js';
import {
  commandInteraction,
  interactionFields,
  resolveOptions,
  type CommandOptionInput,
  type FakeInteraction,
  type InteractionBase,
  type InteractionRecord,
} from './interactions.js';
import { attachmentPayload, channelPayload, memberPayload, rolePayload, userPayload } from './payloads.js';
import { INTERACTION_RESPONSE_EDIT_REFUSED, buildRouter, handleRest } from './routes.js';
import { FakeWorld, type FakeDiscordOptions } from './world.js';

export type { LoggedFile, LoggedRequest } from './http.js';
export type { CommandOptionInput, InteractionRecord } from './interactions.js';
export type { FileInput } from './messages.js';
export { DEFAULT_BOT_PERMISSIONS, DEFAULT_EVERYONE_PERMISSIONS, type FakeDiscordOptions, type PostMessageInput } from './world.js';
export { computeBasePermissions, computeChannelPermissions, hasPermissions } from './permissions.js';

export interface ReplyResult {
  record: InteractionRecord;
  /** The original response as it is now; null if the bot deleted it. */
  original: APIMessage | null;
  followUps: APIMessage[];
  /** Every REST request made with this interaction's token, in order. */
  requests: LoggedRequest[];
}

interface InteractionTarget {
  guildId: string;
  channelId: string;
  userId: string;
  locale?: string;
}

export class FakeDiscord extends FakeWorld {
  readonly requests: LoggedRequest[] = [];
  readonly interactions = new Map<string, InteractionRecord>();
  readonly commands = { global: [] as APIApplicationCommand[], guild: new Map<string, APIApplicationCommand[]>() };
  readonly faults: { rest: RestFaults; cdn: FakeCdn; gateway: FakeGateway };
  readonly interactionAckDeadlineMs: number;
  readonly interactionTokenLifetimeMs: number;
  /** 'request' (a LoggedRequest), emitted once the request is answered and logged. */
  readonly events = new EventEmitter();
  readonly #server: Server;
  /** user id → the id of their DM channel with the bot */
  readonly #dmChannels = new Map<string, string>();
  #closing: Promise<void> | null = null;

  constructor(server: Server, port: number, options: FakeDiscordOptions) {
    super(server, port, options);
    this.#server = server;
    this.interactionAckDeadlineMs = options.interactionAckDeadlineMs ?? 3000;
    this.interactionTokenLifetimeMs = options.interactionTokenLifetimeMs ?? 15 * 60_000;
    this.faults = { rest: new RestFaults(), cdn: this.cdn, gateway: this.gateway };
    const router = buildRouter(this);
    server.on('request', (request, response) => {
      const path = request.url ?? '/';
      if (path.startsWith('/cdn/')) return this.cdn.handle(request, response, path.slice('/cdn'.length));
      if (path.startsWith('/api/')) return void handleRest(this, router, request, response);
      sendJson(response, 404, { message: '404: Not Found', code: 0 });
    });
  }

  /** The discord.js options that point a client here; spread them into `new Client({ intents, ...options })`. */
  clientOptions(): Pick<ClientOptions, 'rest' | 'ws'> {
    return fakeClientOptions(this);
  }

  /** Requests to routes the fake does not serve, so a test can assert the bot used nothing unexpected. */
  get unknownRequests(): LoggedRequest[] {
    return this.requests.filter((request) => request.route === null);
  }

  /**
   * A member runs a chat-input command. Option values are what Discord sends (attachment options: the id from
   * `uploadAttachment`); `data.resolved` is filled from them. Returns the interaction's id; see `waitForReply`.
   */
  slashCommand(target: InteractionTarget & { name: string; options?: CommandOptionInput[] }): string {
    const options = target.options ?? [];
    const resolved = resolveOptions(options, {
      attachment: (id) => {
        const attachment = this.optionAttachment(id);
        return attachment ? attachmentPayload(this.cdn, attachment) : undefined;
      },
      user: (id) => (this.state.users.has(id) ? userPayload(this.state, id) : undefined),
      member: (id) => {
        const member = this.state.member(target.guildId, id);
        if (!member) return undefined;
        const { user: _user, deaf: _deaf, mute: _mute, ...rest } = memberPayload(this.state, member);
        return { ...rest, permissions: this.permissionsIn(target.channelId, id).toString() };
      },
      role: (id) => {
        const role = this.state.roles.get(id);
        return role ? rolePayload(role) : undefined;
      },
      channel: (id) => {
        const channel = this.state.channels.get(id);
        return channel ? { ...channelPayload(channel), permissions: this.permissionsIn(id, target.userId).toString() } as APIInteractionDataResolvedChannel : undefined;
      },
    });
    return this.#dispatchInteraction(
      commandInteraction<APIChatInputApplicationCommandInteraction>(this.#interactionBase(target), {
        id: this.#commandId(target.guildId, target.name, ApplicationCommandType.ChatInput),
        name: target.name,
        type: ApplicationCommandType.ChatInput,
        guild_id: target.guildId,
        options: options as APIApplicationCommandInteractionDataOption[],
        resolved,
      }),
    );
  }

  /** A member uses a message context-menu command on `targetMessageId`. */
  messageCommand(target: InteractionTarget & { name: string; targetMessageId: string }): string {
    const message = this.require(this.state.messages.get(target.targetMessageId), `message ${target.targetMessageId}`);
    return this.#dispatchInteraction(
      commandInteraction<APIMessageApplicationCommandInteraction>(this.#interactionBase(target), {
        id: this.#commandId(target.guildId, target.name, ApplicationCommandType.Message),
        name: target.name,
        type: ApplicationCommandType.Message,
        guild_id: target.guildId,
        target_id: message.id,
        resolved: { messages: { [message.id]: this.serialize(message) } },
      }),
    );
  }

  /** A member clicks a button on one of the bot's messages (callback types 6 and 7 answer these). */
  clickButton(target: InteractionTarget & { messageId: string; customId: string }): string {
    const message = this.require(this.state.messages.get(target.messageId), `message ${target.messageId}`);
    return this.#dispatchInteraction({
      ...interactionFields(this.#interactionBase(target)),
      type: InteractionType.MessageComponent,
      data: { custom_id: target.customId, component_type: ComponentType.Button },
      message: this.serialize(message),
    } as APIMessageComponentInteraction as unknown as FakeInteraction);
  }

  /**
   * A user runs a chat-input command in their direct messages with the bot (no guild, `context` BotDM). The DM
   * channel's id stays the same for a user. Returns the interaction's id; see `waitForReply`.
   */
  dmCommand(input: { userId: string; name: string; options?: CommandOptionInput[]; locale?: string }): string {
    this.require(this.state.users.get(input.userId), `user ${input.userId}`);
    let dmChannelId = this.#dmChannels.get(input.userId);
    if (!dmChannelId) {
      dmChannelId = this.state.snowflake();
      this.#dmChannels.set(input.userId, dmChannelId);
    }
    return this.#dispatchInteraction(
      dmCommandInteraction(this.state, {
        ...input,
        id: this.state.snowflake(),
        commandId: this.commands.global.find((command) => command.name === input.name && (command.type ?? 1) === ApplicationCommandType.ChatInput)?.id ?? this.state.snowflake(),
        applicationId: this.applicationId,
        token: randomBytes(48).toString('base64url'),
        dmChannelId,
      }),
    );
  }

  /**
   * Requests that tried to edit an interaction's response (or follow-up) through the channel-message route, which
   * Discord documents only for ordinary messages; the fake refuses them (403 50005) so the bot's use shows up here.
   */
  get channelEditsOfInteractionResponses(): LoggedRequest[] {
    return this.requests.filter((request) => (request.response as { message?: string } | undefined)?.message === INTERACTION_RESPONSE_EDIT_REFUSED);
  }

  /** The interaction's token expires now, as it would `interactionTokenLifetimeMs` after the interaction. */
  expireInteractionToken(interactionId: string): void {
    this.require(this.interactions.get(interactionId), `interaction ${interactionId}`).tokenExpiresAt = Date.now();
  }

  // ---- waiting -----------------------------------------------------------------------------------------------------

  /**
   * Resolves once the bot has answered the interaction with a real message (an immediate reply, or a deferral
   * followed by its edit), or once `until` holds for later edits (progress messages). Rejects after `timeoutMs`
   * with what the bot did so far.
   */
  waitForReply(interactionId: string, options: { until?: (reply: ReplyResult) => boolean; timeoutMs?: number } = {}): Promise<ReplyResult> {
    const until = options.until ?? ((reply: ReplyResult) => reply.record.replyLatencyMs !== null || reply.record.callbacks.some((c) => c.type === 6 || c.type === 7));
    const progress = (): string => {
      const { record, requests } = this.reply(interactionId);
      const calls = requests.map((logged) => `${logged.method} ${logged.route} → ${logged.status}`);
      return `a reply to interaction ${interactionId} (callbacks: [${record.callbacks.map((c) => c.type)}]; requests: [${calls.join(', ')}])`;
    };
    return this.#waitFor(options.timeoutMs ?? 10_000, progress, () => {
      const reply = this.reply(interactionId);
      return until(reply) ? reply : undefined;
    });
  }

  /** What the bot has done so far in answer to the interaction. */
  reply(interactionId: string): ReplyResult {
    const record = this.require(this.interactions.get(interactionId), `interaction ${interactionId}`);
    const original = record.originalMessageId ? this.state.messages.get(record.originalMessageId) : undefined;
    return {
      record,
      original: original ? this.serialize(original) : null,
      followUps: record.followUpMessageIds.flatMap((id) => {
        const message = this.state.messages.get(id);
        return message ? [this.serialize(message)] : [];
      }),
      requests: this.requests.filter((request) => request.params.token === record.token),
    };
  }

  /** The first logged REST request, past or future, that matches. */
  waitForRequest(matches: (request: LoggedRequest) => boolean, timeoutMs = 10_000): Promise<LoggedRequest> {
    return this.#waitFor(timeoutMs, () => 'matching REST request', () => this.requests.find(matches));
  }

  /** Resolves when a RESUME has been answered (RESUMED sent, missed events replayed). */
  waitForResume(timeoutMs = 10_000): Promise<{ sessionId: string; replayed: string[] }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('fake Discord: no RESUME within the time limit')), timeoutMs);
      this.gateway.once('resumed', (event: { sessionId: string; replayed: string[] }) => {
        clearTimeout(timer);
        resolve(event);
      });
    });
  }

  /** Stops everything; safe to call again (a test's own clean-up and a shared `after` may both call it). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.gateway.close();
      this.#server.closeAllConnections();
      await new Promise<void>((resolve, reject) => this.#server.close((error) => (error ? reject(error) : resolve())));
    })();
    return this.#closing;
  }

  /** Called by the routes after every change to an interaction's messages; waiters hear of it via 'request'. */
  noteReplyProgress(record: InteractionRecord): void {
    const original = record.originalMessageId ? this.state.messages.get(record.originalMessageId) : undefined;
    if (record.replyLatencyMs === null && original && (original.flags & MessageFlags.Loading) === 0) {
      record.replyLatencyMs = Date.now() - record.createdAt;
    }
  }

  #commandId(guildId: string, name: string, type: ApplicationCommandType): string {
    const registered = [...this.commands.global, ...(this.commands.guild.get(guildId) ?? [])];
    return registered.find((command) => command.name === name && (command.type ?? 1) === type)?.id ?? this.state.snowflake();
  }

  #interactionBase(target: InteractionTarget): InteractionBase {
    const guild = this.require(this.state.guilds.get(target.guildId), `guild ${target.guildId}`);
    const channel = this.require(this.state.channels.get(target.channelId), `channel ${target.channelId}`);
    const member = this.require(this.state.member(target.guildId, target.userId), `member ${target.userId}`);
    return {
      id: this.state.snowflake(),
      applicationId: this.applicationId,
      token: randomBytes(48).toString('base64url'),
      guildId: guild.id,
      guildLocale: guild.locale,
      channel: channelPayload(channel) as InteractionBase['channel'],
      member: { ...memberPayload(this.state, member), permissions: this.permissionsIn(channel.id, target.userId).toString() } as InteractionBase['member'],
      appPermissions: this.permissionsIn(channel.id, this.botUserId),
      locale: target.locale ?? 'en-US',
    };
  }

  #dispatchInteraction(payload: FakeInteraction): string {
    const createdAt = Date.now();
    this.interactions.set(payload.id, {
      id: payload.id,
      token: payload.token,
      payload,
      createdAt,
      tokenExpiresAt: createdAt + this.interactionTokenLifetimeMs,
      callbacks: [],
      originalMessageId: null,
      followUpMessageIds: [],
      ackLatencyMs: null,
      replyLatencyMs: null,
    });
    this.gateway.dispatch({ t: GatewayDispatchEvents.InteractionCreate, d: payload });
    return payload.id;
  }

  #waitFor<T>(timeoutMs: number, describe: () => string, check: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const listener = (): void => {
        const found = check();
        if (found === undefined) return;
        clearTimeout(timer);
        this.events.off('request', listener);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.events.off('request', listener);
        reject(new Error(`fake Discord: no ${describe()} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.events.on('request', listener);
      listener();
    });
  }
}

/** Starts the fake on 127.0.0.1 and an ephemeral port. */
export async function startFakeDiscord(options: FakeDiscordOptions = {}): Promise<FakeDiscord> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return new FakeDiscord(server, (server.address() as AddressInfo).port, options);
}
