import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import {
  GatewayCloseCodes,
  GatewayDispatchEvents,
  GatewayIntentBits,
  GatewayOpcodes,
  type GatewayDispatchPayload,
  type GatewayReadyDispatchData,
} from 'discord-api-types/v10';
import { WebSocket, WebSocketServer } from 'ws';

interface Session {
  id: string;
  intents: number;
  sequence: number;
  /** Every dispatch of the session, for RESUME replay. */
  sent: GatewayDispatchPayload[];
  socket: WebSocket | null;
  /** IDENTIFY's `shard: [id, total]` ([0, 1] when absent): the guilds whose events this session receives. */
  shard: [number, number];
}

export interface GatewayLogEntry {
  direction: 'in' | 'out';
  op: number;
  t?: string;
  at: number;
}

/** What the gateway needs from the rest of the fake at IDENTIFY time. */
export interface GatewayHost {
  token: string;
  ready(sessionId: string, shard: [number, number]): Omit<GatewayReadyDispatchData, 'session_id' | 'resume_gateway_url'>;
  guildCreates(shard: [number, number]): { t: GatewayDispatchEvents.GuildCreate; d: unknown }[];
}

/** Discord's rule: a guild belongs to shard `(guild_id >> 22) % total`; events without a guild (DMs) go to shard 0. */
export function guildOnShard(guildId: string | undefined, shard: [number, number]): boolean {
  const [id, total] = shard;
  return guildId === undefined ? id === 0 : Number((BigInt(guildId) >> 22n) % BigInt(total)) === id;
}

/** The guild an event concerns: `guild_id`, or the guild itself for GUILD_CREATE / UPDATE / DELETE. */
function guildOfEvent(t: string, d: unknown): string | undefined {
  const data = (d ?? {}) as { guild_id?: string; id?: string };
  if (data.guild_id) return data.guild_id;
  return t === GatewayDispatchEvents.GuildCreate || t === GatewayDispatchEvents.GuildUpdate || t === GatewayDispatchEvents.GuildDelete ? data.id : undefined;
}

const MESSAGE_EVENTS = new Set<string>([
  GatewayDispatchEvents.MessageCreate,
  GatewayDispatchEvents.MessageUpdate,
  GatewayDispatchEvents.MessageDelete,
  GatewayDispatchEvents.MessageDeleteBulk,
]);
const REACTION_EVENTS = new Set<string>([
  GatewayDispatchEvents.MessageReactionAdd,
  GatewayDispatchEvents.MessageReactionRemove,
  GatewayDispatchEvents.MessageReactionRemoveAll,
  GatewayDispatchEvents.MessageReactionRemoveEmoji,
]);

function intentAllows(intents: number, event: string): boolean {
  if (MESSAGE_EVENTS.has(event)) return (intents & GatewayIntentBits.GuildMessages) !== 0;
  if (REACTION_EVENTS.has(event)) return (intents & GatewayIntentBits.GuildMessageReactions) !== 0;
  if (event.startsWith('GUILD_MEMBER_')) return (intents & GatewayIntentBits.GuildMembers) !== 0;
  if (event.startsWith('GUILD_') || event.startsWith('CHANNEL_')) return (intents & GatewayIntentBits.Guilds) !== 0;
  return true;
}

/**
 * The gateway: HELLO, IDENTIFY → READY + one GUILD_CREATE per guild, heartbeat ACKs, RESUME → replay of the events
 * missed since the client's sequence, then RESUMED. Events are filtered by the session's intents. Emits
 * 'identified', 'resumed' and 'log' so tests can wait on them.
 */
export class FakeGateway extends EventEmitter {
  readonly log: GatewayLogEntry[] = [];
  readonly #sessions = new Map<string, Session>();
  readonly #server: WebSocketServer;
  heartbeatIntervalMs = 41_250;

  constructor(
    server: Server,
    readonly url: string,
    private readonly host: GatewayHost,
  ) {
    super();
    this.#server = new WebSocketServer({ server });
    this.#server.on('connection', (socket) => this.#accept(socket));
  }

  /**
   * Sends a dispatch to every session allowed to see it (by intents, by shard: only the shard owning the event's
   * guild, and by `allowed` when given); disconnected sessions keep it for replay.
   */
  dispatch(payload: { t: string; d: unknown }, transform?: (intents: number) => unknown, allowed?: (intents: number) => boolean): void {
    const guildId = guildOfEvent(payload.t, payload.d);
    for (const session of this.#sessions.values()) {
      if (!intentAllows(session.intents, payload.t) || (allowed && !allowed(session.intents))) continue;
      if (!guildOnShard(guildId, session.shard)) continue;
      this.#send(session, { t: payload.t, d: transform ? transform(session.intents) : payload.d });
    }
  }

  /** Closes every live connection with `code` (4000: discord.js resumes; 1000: it re-identifies). */
  async disconnect(code: number = GatewayCloseCodes.UnknownError): Promise<void> {
    const closing = [...this.#sessions.values()].flatMap((session) => (session.socket ? [session.socket] : []));
    await Promise.all(
      closing.map(
        (socket) =>
          new Promise<void>((resolve) => {
            socket.once('close', () => resolve());
            socket.close(code, 'fake Discord: disconnect');
          }),
      ),
    );
  }

  /** Opcode 9. Not resumable: the sessions are forgotten and the client must IDENTIFY again. */
  invalidateSessions(resumable = false): void {
    for (const session of [...this.#sessions.values()]) {
      session.socket?.send(JSON.stringify({ op: GatewayOpcodes.InvalidSession, d: resumable }));
      if (!resumable) this.#sessions.delete(session.id);
    }
  }

  /** Opcode 7: the client closes and resumes. */
  requestReconnect(): void {
    for (const session of this.#sessions.values()) session.socket?.send(JSON.stringify({ op: GatewayOpcodes.Reconnect, d: null }));
  }

  get connected(): boolean {
    return [...this.#sessions.values()].some((session) => session.socket?.readyState === WebSocket.OPEN);
  }

  async close(): Promise<void> {
    for (const socket of this.#server.clients) socket.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: WebSocket): void {
    let session: Session | null = null;
    this.#write(socket, { op: GatewayOpcodes.Hello, d: { heartbeat_interval: this.heartbeatIntervalMs } });
    socket.on('message', (raw) => {
      const payload = JSON.parse(raw.toString()) as { op: number; d: any };
      this.#record({ direction: 'in', op: payload.op, at: Date.now() });
      switch (payload.op) {
        case GatewayOpcodes.Heartbeat:
          this.#write(socket, { op: GatewayOpcodes.HeartbeatAck });
          break;
        case GatewayOpcodes.Identify:
          session = this.#identify(socket, payload.d);
          break;
        case GatewayOpcodes.Resume:
          session = this.#resume(socket, payload.d);
          break;
        default:
          break;
      }
    });
    socket.on('close', () => {
      if (session?.socket === socket) session.socket = null;
    });
  }

  #identify(socket: WebSocket, data: { token: string; intents: number; shard?: [number, number] }): Session | null {
    if (data.token !== this.host.token) {
      socket.close(GatewayCloseCodes.AuthenticationFailed, 'Authentication failed.');
      return null;
    }
    const shard = data.shard ?? [0, 1];
    if (!(shard[1] >= 1 && shard[0] >= 0 && shard[0] < shard[1])) {
      socket.close(GatewayCloseCodes.InvalidShard, 'Invalid shard.');
      return null;
    }
    const session: Session = { id: randomBytes(16).toString('hex'), intents: data.intents, sequence: 0, sent: [], socket, shard };
    this.#sessions.set(session.id, session);
    const ready: GatewayReadyDispatchData = {
      ...this.host.ready(session.id, shard),
      session_id: session.id,
      resume_gateway_url: this.url,
    };
    this.#send(session, { t: GatewayDispatchEvents.Ready, d: ready });
    for (const guild of this.host.guildCreates(shard)) this.#send(session, guild);
    this.emit('identified', session.id, shard);
    return session;
  }

  #resume(socket: WebSocket, data: { token: string; session_id: string; seq: number }): Session | null {
    const session = this.#sessions.get(data.session_id);
    if (!session || data.token !== this.host.token) {
      this.#write(socket, { op: GatewayOpcodes.InvalidSession, d: false });
      return null;
    }
    session.socket = socket;
    const missed = session.sent.filter((payload) => payload.s > data.seq);
    for (const payload of missed) this.#write(socket, payload);
    this.#send(session, { t: GatewayDispatchEvents.Resumed, d: {} });
    this.emit('resumed', { sessionId: session.id, replayed: missed.map((payload) => payload.t) });
    return session;
  }

  #send(session: Session, event: { t: string; d: unknown }): void {
    session.sequence += 1;
    const payload = { op: GatewayOpcodes.Dispatch, s: session.sequence, ...event } as GatewayDispatchPayload;
    session.sent.push(payload);
    if (session.socket?.readyState === WebSocket.OPEN) this.#write(session.socket, payload);
  }

  #write(socket: WebSocket, payload: { op: number; t?: string | null; d?: unknown }): void {
    this.#record({ direction: 'out', op: payload.op, ...(payload.t ? { t: payload.t } : {}), at: Date.now() });
    socket.send(JSON.stringify(payload));
  }

  #record(entry: GatewayLogEntry): void {
    this.log.push(entry);
    this.emit('log', entry);
  }
}
