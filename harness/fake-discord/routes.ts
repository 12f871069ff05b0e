import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ApplicationCommandType,
  GatewayDispatchEvents,
  InteractionResponseType,
  MessageFlags,
  PermissionFlagsBits,
  type APIApplicationCommand,
  type APIMessage,
  type RESTPostAPIApplicationCommandsJSONBody,
} from 'discord-api-types/v10';
import { HttpError, Router, decodeBody, sendJson, type LoggedFile, type LoggedRequest, type RouteContext } from './http.js';
import type { FakeDiscord } from './index.js';
import type { InteractionRecord } from './interactions.js';
import { attachmentsAfter } from './messages.js';
import { channelPayload, guildPayload, memberPayload, rolePayload, userPayload } from './payloads.js';
import { hasPermissions } from './permissions.js';
import { addThreadRoutes } from './thread-routes.js';
import { compareSnowflakes, type FakeChannel, type FakeMessage } from './state.js';

const API_PREFIX = /^\/api\/v\d+/;
/** The refusal of an interaction response edited through the channel route (see the PATCH route below). */
export const INTERACTION_RESPONSE_EDIT_REFUSED = 'Cannot edit an interaction response through the channel message route';
/** Interaction callbacks and webhook routes authenticate with the interaction token in the path, not the bot token. */
const TOKEN_AUTHENTICATED = /^\/(interactions|webhooks)\//;

export async function handleRest(fake: FakeDiscord, router: Router, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://fake');
  const path = url.pathname.replace(API_PREFIX, '');
  const method = request.method ?? 'GET';
  const matched = router.match(method, path);
  const log: LoggedRequest = {
    method,
    path,
    route: matched?.route.pattern ?? null,
    params: matched?.params ?? {},
    query: Object.fromEntries(url.searchParams),
    authorization: request.headers.authorization,
    body: undefined,
    files: [],
    status: 0,
    response: undefined,
    at: Date.now(),
  };
  let status: number;
  let body: unknown;
  try {
    const decoded = await decodeBody(request);
    log.body = decoded.body;
    log.files = decoded.files;
    const fault = fake.faults.rest.apply(method, path, log.route, response);
    if (fault) {
      ({ status, body } = fault);
    } else {
      ({ status, body } = run(fake, matched, { params: log.params, query: url.searchParams, body: decoded.body, files: decoded.files }, log));
      if (status === 204) response.writeHead(204).end();
      else sendJson(response, status, body);
    }
  } catch (error) {
    status = error instanceof HttpError ? error.status : 500;
    body = error instanceof HttpError ? { message: error.message, code: error.code } : { message: String(error), code: 0 };
    sendJson(response, status, body);
  }
  log.status = status;
  log.response = body;
  fake.requests.push(log);
  fake.events.emit('request', log);
}

function run(
  fake: FakeDiscord,
  matched: ReturnType<Router['match']>,
  context: RouteContext,
  log: LoggedRequest,
): { status: number; body: unknown } {
  if (!matched) throw new HttpError(404, 0, '404: Not Found');
  if (!TOKEN_AUTHENTICATED.test(log.path) && log.authorization !== `Bot ${fake.token}`) throw new HttpError(401, 0, '401: Unauthorized');
  const body = matched.route.handler(context);
  return body === undefined ? { status: 204, body: undefined } : { status: 200, body };
}

export function buildRouter(fake: FakeDiscord): Router {
  const router = new Router();
  const { state } = fake;

  const channelFor = (channelId: string, required: bigint): FakeChannel => {
    const channel = state.channels.get(channelId);
    if (!channel) throw new HttpError(404, 10003, 'Unknown Channel');
    const granted = fake.permissionsIn(channelId, fake.botUserId);
    if (!hasPermissions(granted, PermissionFlagsBits.ViewChannel)) throw new HttpError(403, 50001, 'Missing Access');
    if (!hasPermissions(granted, required)) throw new HttpError(403, 50013, 'Missing Permissions');
    return channel;
  };
  const messageIn = (channelId: string, messageId: string): FakeMessage => {
    const message = state.messages.get(messageId);
    if (!message || message.channelId !== channelId) throw new HttpError(404, 10008, 'Unknown Message');
    return message;
  };
  const guildFor = (guildId: string) => {
    if (!state.guilds.has(guildId)) throw new HttpError(404, 10004, 'Unknown Guild');
    return guildId;
  };

  router.add('GET', '/gateway/bot', () => ({
    url: fake.gatewayUrl,
    shards: fake.recommendedShards,
    session_start_limit: { total: 1000, remaining: 1000, reset_after: 86_400_000, max_concurrency: 1 },
  }));
  router.add('GET', '/gateway', () => ({ url: fake.gatewayUrl }));
  const application = () => ({
    id: fake.applicationId,
    name: state.users.get(fake.botUserId)?.username,
    icon: null,
    description: '',
    bot_public: true,
    bot_require_code_grant: false,
    verify_key: '0'.repeat(64),
    flags: 0,
    team: null,
    summary: '',
    bot: userPayload(state, fake.botUserId),
  });
  router.add('GET', '/applications/@me', application);
  router.add('GET', '/oauth2/applications/@me', application);
  router.add('GET', '/users/@me', () => userPayload(state, fake.botUserId));
  router.add('GET', '/users/:userId', ({ params }) => {
    if (!state.users.has(params.userId)) throw new HttpError(404, 10013, 'Unknown User');
    return userPayload(state, params.userId);
  });

  // ---- commands ----
  const overwriteCommands = (existing: APIApplicationCommand[], bodies: RESTPostAPIApplicationCommandsJSONBody[], guildId?: string) =>
    bodies.map(
      (body) =>
        ({
          type: ApplicationCommandType.ChatInput,
          description: '',
          default_member_permissions: null,
          ...body,
          id: existing.find((command) => command.name === body.name && (command.type ?? 1) === (body.type ?? 1))?.id ?? state.snowflake(),
          application_id: fake.applicationId,
          version: state.snowflake(),
          ...(guildId ? { guild_id: guildId } : {}),
        }) as APIApplicationCommand,
    );
  router.add('GET', '/applications/:applicationId/commands', () => fake.commands.global);
  router.add('PUT', '/applications/:applicationId/commands', ({ body }) => {
    fake.commands.global = overwriteCommands(fake.commands.global, body);
    return fake.commands.global;
  });
  router.add('GET', '/applications/:applicationId/guilds/:guildId/commands', ({ params }) => fake.commands.guild.get(params.guildId) ?? []);
  router.add('PUT', '/applications/:applicationId/guilds/:guildId/commands', ({ params, body }) => {
    const commands = overwriteCommands(fake.commands.guild.get(params.guildId) ?? [], body, params.guildId);
    fake.commands.guild.set(params.guildId, commands);
    return commands;
  });

  // ---- guilds ----
  router.add('GET', '/guilds/:guildId', ({ params }) => guildPayload(state, guildFor(params.guildId)));
  router.add('GET', '/guilds/:guildId/channels', ({ params }) => state.guildChannels(guildFor(params.guildId)).map(channelPayload));
  router.add('GET', '/guilds/:guildId/roles', ({ params }) => state.guildRoles(guildFor(params.guildId)).map(rolePayload));
  router.add('GET', '/guilds/:guildId/members/:userId', ({ params }) => {
    const member = state.member(guildFor(params.guildId), params.userId);
    if (!member) throw new HttpError(404, 10007, 'Unknown Member');
    return memberPayload(state, member);
  });

  // ---- channels and messages ----
  router.add('GET', '/channels/:channelId', ({ params }) => channelPayload(channelFor(params.channelId, 0n)));
  router.add('GET', '/channels/:channelId/messages', ({ params, query }) => {
    channelFor(params.channelId, PermissionFlagsBits.ReadMessageHistory);
    return listMessages(state.channelMessages(params.channelId), query).map((message) => fake.serialize(message));
  });
  router.add('GET', '/channels/:channelId/messages/:messageId', ({ params }) => {
    channelFor(params.channelId, PermissionFlagsBits.ReadMessageHistory);
    return fake.serialize(messageIn(params.channelId, params.messageId));
  });
  router.add('POST', '/channels/:channelId/messages', ({ params, body, files }) => {
    // In threads Discord checks Send Messages in Threads instead of Send Messages.
    const send = state.channels.get(params.channelId)?.thread ? PermissionFlagsBits.SendMessagesInThreads : PermissionFlagsBits.SendMessages;
    const channel = channelFor(params.channelId, send | (files.length ? PermissionFlagsBits.AttachFiles : 0n));
    const message = createWithFiles(fake, channel.id, body, files, { referencedMessageId: body?.message_reference?.message_id ?? null });
    fake.dispatchMessage(GatewayDispatchEvents.MessageCreate, message);
    return fake.serialize(message);
  });
  router.add('PATCH', '/channels/:channelId/messages/:messageId', ({ params, body, files }) => {
    channelFor(params.channelId, 0n);
    const message = messageIn(params.channelId, params.messageId);
    if (message.authorId !== fake.botUserId) throw new HttpError(403, 50005, 'Cannot edit a message authored by another user');
    // Discord documents editing an interaction's response and follow-ups through the interaction webhook
    // (PATCH /webhooks/{application.id}/{token}/messages/...), not this route. Refused here, so a bot relying on it
    // fails in tests rather than on Discord; `channelEditsOfInteractionResponses` lists the attempts.
    if (message.interactionId !== null) throw new HttpError(403, 50005, INTERACTION_RESPONSE_EDIT_REFUSED);
    return editMessage(fake, message, body, files);
  });
  router.add('DELETE', '/channels/:channelId/messages/:messageId', ({ params }) => {
    const message = messageIn(params.channelId, params.messageId);
    channelFor(params.channelId, message.authorId === fake.botUserId ? 0n : PermissionFlagsBits.ManageMessages);
    fake.deleteMessage(message.id);
    return undefined;
  });
  router.add('POST', '/channels/:channelId/messages/bulk-delete', ({ params, body }) => {
    channelFor(params.channelId, PermissionFlagsBits.ManageMessages);
    fake.bulkDeleteMessages(params.channelId, body.messages);
    return undefined;
  });

  addThreadRoutes(router, fake, channelFor);

  // ---- reactions ----
  router.add('PUT', '/channels/:channelId/messages/:messageId/reactions/:emoji/@me', ({ params }) => {
    channelFor(params.channelId, PermissionFlagsBits.AddReactions | PermissionFlagsBits.ReadMessageHistory);
    messageIn(params.channelId, params.messageId);
    fake.addReaction(params.channelId, params.messageId, fake.botUserId, params.emoji);
    return undefined;
  });
  router.add('DELETE', '/channels/:channelId/messages/:messageId/reactions/:emoji/:userId', ({ params }) => {
    const own = params.userId === '@me';
    channelFor(params.channelId, own ? 0n : PermissionFlagsBits.ManageMessages);
    messageIn(params.channelId, params.messageId);
    fake.removeReaction(params.channelId, params.messageId, own ? fake.botUserId : params.userId, params.emoji);
    return undefined;
  });
  router.add('GET', '/channels/:channelId/messages/:messageId/reactions/:emoji', ({ params }) => {
    channelFor(params.channelId, PermissionFlagsBits.ReadMessageHistory);
    const users = messageIn(params.channelId, params.messageId).reactions.get(params.emoji) ?? new Set();
    return [...users].map((userId) => userPayload(state, userId));
  });
  router.add('DELETE', '/channels/:channelId/messages/:messageId/reactions', ({ params }) => {
    channelFor(params.channelId, PermissionFlagsBits.ManageMessages);
    const message = messageIn(params.channelId, params.messageId);
    message.reactions.clear();
    fake.gateway.dispatch({
      t: GatewayDispatchEvents.MessageReactionRemoveAll,
      d: { channel_id: message.channelId, message_id: message.id, ...(message.guildId ? { guild_id: message.guildId } : {}) },
    });
    return undefined;
  });

  // ---- interactions ----
  const interactionFor = (interactionId: string | undefined, token: string): InteractionRecord => {
    const record = interactionId ? fake.interactions.get(interactionId) : [...fake.interactions.values()].find((candidate) => candidate.token === token);
    if (!record || record.token !== token) throw new HttpError(404, 10062, 'Unknown interaction');
    if (Date.now() >= record.tokenExpiresAt) {
      // Discord refuses an expired token on every webhook route alike, before looking at the message.
      if (interactionId) throw new HttpError(404, 10062, 'Unknown interaction');
      throw new HttpError(401, 50027, 'Invalid Webhook Token');
    }
    return record;
  };
  const webhookMessage = (record: InteractionRecord, messageId: string): FakeMessage => {
    const id = messageId === '@original' ? record.originalMessageId : record.followUpMessageIds.find((candidate) => candidate === messageId) ?? (record.originalMessageId === messageId ? messageId : null);
    const message = id ? state.messages.get(id) : undefined;
    if (!message) throw new HttpError(404, 10008, 'Unknown Message');
    return message;
  };
  router.add('POST', '/interactions/:interactionId/:token/callback', ({ params, query, body, files }) => {
    const record = interactionFor(params.interactionId, params.token);
    if (record.callbacks.length > 0) throw new HttpError(400, 40060, 'Interaction has already been acknowledged.');
    const elapsed = Date.now() - record.createdAt;
    if (fake.interactionAckDeadlineMs > 0 && elapsed > fake.interactionAckDeadlineMs) throw new HttpError(404, 10062, 'Unknown interaction');
    const message = answerCallback(fake, record, body, files);
    record.callbacks.push({ type: body.type, body, files, at: Date.now() });
    record.ackLatencyMs = elapsed;
    fake.noteReplyProgress(record);
    if (query.get('with_response') !== 'true') return undefined;
    return {
      interaction: {
        id: record.id,
        type: record.payload.type,
        response_message_id: message?.id,
        response_message_loading: message ? (message.flags & MessageFlags.Loading) !== 0 : undefined,
        response_message_ephemeral: message ? (message.flags & MessageFlags.Ephemeral) !== 0 : undefined,
      },
      resource: { type: body.type, ...(message ? { message: fake.serialize(message) } : {}) },
    };
  });
  router.add('GET', '/webhooks/:applicationId/:token/messages/:messageId', ({ params }) =>
    fake.serialize(webhookMessage(interactionFor(undefined, params.token), params.messageId)),
  );
  router.add('PATCH', '/webhooks/:applicationId/:token/messages/:messageId', ({ params, body, files }) => {
    const record = interactionFor(undefined, params.token);
    const edited = editMessage(fake, webhookMessage(record, params.messageId), body, files);
    fake.noteReplyProgress(record);
    return edited;
  });
  router.add('DELETE', '/webhooks/:applicationId/:token/messages/:messageId', ({ params }) => {
    const record = interactionFor(undefined, params.token);
    const message = webhookMessage(record, params.messageId);
    if ((message.flags & MessageFlags.Ephemeral) === 0) fake.deleteMessage(message.id);
    else state.messages.delete(message.id);
    fake.noteReplyProgress(record);
    return undefined;
  });
  router.add('POST', '/webhooks/:applicationId/:token', ({ params, query, body, files }) => {
    const record = interactionFor(undefined, params.token);
    const original = record.originalMessageId ? state.messages.get(record.originalMessageId) : undefined;
    let result: APIMessage;
    // Discord turns the first follow-up after a deferral into the edit of the "thinking…" message.
    if (original && (original.flags & MessageFlags.Loading) !== 0) {
      result = editMessage(fake, original, body, files);
    } else {
      const message = createWithFiles(fake, record.payload.channel.id, body, files, { interactionId: record.id });
      record.followUpMessageIds.push(message.id);
      fake.dispatchMessage(GatewayDispatchEvents.MessageCreate, message);
      result = fake.serialize(message);
    }
    fake.noteReplyProgress(record);
    return query.get('wait') === 'true' ? result : undefined;
  });

  return router;
}

/** Newest first; `before`/`after`/`around` pick the `limit` (default 50, at most 100) messages nearest the cursor. */
function listMessages(newestFirst: FakeMessage[], query: URLSearchParams): FakeMessage[] {
  const limit = Math.min(Math.max(Number(query.get('limit') ?? 50), 1), 100);
  const before = query.get('before');
  const after = query.get('after');
  const around = query.get('around');
  if (before) return newestFirst.filter((message) => compareSnowflakes(message.id, before) < 0).slice(0, limit);
  if (after) return newestFirst.filter((message) => compareSnowflakes(message.id, after) > 0).slice(-limit);
  if (around) {
    const newer = newestFirst.filter((message) => compareSnowflakes(message.id, around) >= 0).slice(-Math.ceil(limit / 2));
    const older = newestFirst.filter((message) => compareSnowflakes(message.id, around) < 0).slice(0, Math.floor(limit / 2));
    return [...newer, ...older];
  }
  return newestFirst.slice(0, limit);
}

function createWithFiles(
  fake: FakeDiscord,
  channelId: string,
  body: any,
  files: LoggedFile[],
  extra: { referencedMessageId?: string | null; interactionId?: string; flags?: number },
): FakeMessage {
  const { uploaded } = attachmentsAfter(fake.state, channelId, body, files, []);
  for (const { attachment, data } of uploaded) fake.cdn.store(attachment, data);
  return fake.createMessage({
    channelId,
    authorId: fake.botUserId,
    content: body?.content ?? '',
    attachments: uploaded.map((upload) => upload.attachment),
    embeds: body?.embeds ?? [],
    components: body?.components ?? [],
    flags: (extra.flags ?? 0) | ((body?.flags ?? 0) & MessageFlags.Ephemeral),
    referencedMessageId: extra.referencedMessageId ?? null,
    interactionId: extra.interactionId ?? null,
  });
}

function editMessage(fake: FakeDiscord, message: FakeMessage, body: any, files: LoggedFile[]): APIMessage {
  const { kept, uploaded } = attachmentsAfter(fake.state, message.channelId, body, files, message.attachments);
  for (const { attachment, data } of uploaded) fake.cdn.store(attachment, data);
  message.attachments = [...kept, ...uploaded.map((upload) => upload.attachment)];
  if (body && 'content' in body) message.content = body.content ?? '';
  if (body && 'embeds' in body) message.embeds = body.embeds ?? [];
  if (body && 'components' in body) message.components = body.components ?? [];
  message.flags &= ~MessageFlags.Loading;
  message.editedTimestamp = new Date().toISOString();
  fake.dispatchMessage(GatewayDispatchEvents.MessageUpdate, message);
  return fake.serialize(message);
}

function answerCallback(fake: FakeDiscord, record: InteractionRecord, body: any, files: LoggedFile[]): FakeMessage | undefined {
  const channelId = record.payload.channel.id;
  switch (body.type) {
    case InteractionResponseType.ChannelMessageWithSource:
    case InteractionResponseType.DeferredChannelMessageWithSource: {
      const loading = body.type === InteractionResponseType.DeferredChannelMessageWithSource;
      const message = createWithFiles(fake, channelId, loading ? { flags: body.data?.flags } : body.data, files, {
        interactionId: record.id,
        flags: loading ? MessageFlags.Loading : 0,
      });
      record.originalMessageId = message.id;
      fake.dispatchMessage(GatewayDispatchEvents.MessageCreate, message);
      return message;
    }
    case InteractionResponseType.UpdateMessage:
    case InteractionResponseType.DeferredMessageUpdate: {
      const messageId = 'message' in record.payload ? (record.payload.message as APIMessage | undefined)?.id : undefined;
      const message = messageId ? fake.state.messages.get(messageId) : undefined;
      if (!message) throw new HttpError(400, 50035, 'Invalid Form Body: this interaction has no message to update');
      if (body.type === InteractionResponseType.UpdateMessage) editMessage(fake, message, body.data, files);
      return message;
    }
    default:
      return undefined;
  }
}
