import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';

/** Where a channel's history backfill stands; `before` is the oldest message already processed. */
export interface BackfillState {
  guildId: string;
  channelId: string;
  before?: string;
  done: boolean;
  messages: number;
  images: number;
  statusChannelId?: string;
  statusMessageId?: string;
  /** A thread's or forum post's own backfill: `channelId` is the thread, this is the watched channel. */
  parentId?: string;
  /** A watched channel's threads and forum posts (active and archived) have all been read. */
  threadsDone?: boolean;
  /** Who asked for the backfill: a status that moves to a new message is addressed to them. */
  statusUserId?: string;
  /** true once the status is an ordinary message of the bot's; otherwise it is the /watch reply. */
  statusIsOrdinary?: boolean;
  /**
   * Why the backfill stopped (the bot lost access to the channel). It is not resumed at start-up until a new
   * /watch of the channel has checked the permissions again.
   */
  problem?: string;
}

/** A result message that can still be browsed. */
export interface BrowseState {
  guildId: string;
  channelId: string;
  invokerId: string;
  /**
   * `source`: the reference (post) the hit was found through, which the card shows and links to; `key`: while a
   * style trial runs, the key the hit was drafted from (a judgement on it counts for that key).
   */
  hits: Array<{ id: number; score: number; source?: string; key?: string }>;
  position: number;
  ephemeral: boolean;
  /** A small WebP of the image the results are relevant to, for re-drawing the overview (base64). */
  queryThumbnail?: string;
  /**
   * What 👍/👎 re-rank from: the stored query image, or the features of one never stored (an upload; base64
   * float16). Absent in states saved before feedback existed, which then cannot take it.
   */
  query?: { id: number } | { f16: string };
  /** The index key the results came from, stored with each judgement. */
  key?: string;
  /** Results the asker judged for this query (image ids): the re-ranking's Rocchio input and the marks shown. */
  liked?: number[];
  disliked?: number[];
}

/**
 * The bot's own small state (not images: those live in the engine's namespaces), in one SQLite file through
 * keyv: watched channels, backfill cursors, per-guild switches and browsing state with an expiry.
 */
export class BotSettings {
  private constructor(private readonly keyv: Keyv) {}

  static async open(dataDir: string): Promise<BotSettings> {
    await mkdir(dataDir, { recursive: true });
    const adapter = new KeyvSqlite({ uri: `sqlite://${join(dataDir, 'bot.sqlite')}`, busyTimeout: 10_000 });
    await adapter.query('PRAGMA journal_mode=WAL');
    return new BotSettings(new Keyv({ store: adapter, namespace: 'bot' }));
  }

  async watched(guildId: string): Promise<string[]> {
    return (await this.keyv.get<string[]>(`watch:${guildId}`)) ?? [];
  }

  async isWatched(guildId: string, channelId: string): Promise<boolean> {
    return (await this.watched(guildId)).includes(channelId);
  }

  /** Returns false when the channel was already watched. */
  async watch(guildId: string, channelId: string): Promise<boolean> {
    const current = await this.watched(guildId);
    if (current.includes(channelId)) return false;
    await this.keyv.set(`watch:${guildId}`, [...current, channelId]);
    return true;
  }

  async unwatch(guildId: string, channelId: string): Promise<boolean> {
    const current = await this.watched(guildId);
    if (!current.includes(channelId)) return false;
    await this.keyv.set(`watch:${guildId}`, current.filter((id) => id !== channelId));
    await this.keyv.delete(`backfill:${channelId}`);
    await this.keyv.delete(`reposts:${channelId}`);
    return true;
  }

  /** Whether a watched channel answers reposts with a notice (`/watch reposts:notify`); off by default. */
  async repostNotices(channelId: string): Promise<boolean> {
    return (await this.keyv.get<boolean>(`reposts:${channelId}`)) === true;
  }

  async setRepostNotices(channelId: string, on: boolean): Promise<void> {
    if (on) await this.keyv.set(`reposts:${channelId}`, true);
    else await this.keyv.delete(`reposts:${channelId}`);
  }

  async backfill(channelId: string): Promise<BackfillState | undefined> {
    return this.keyv.get<BackfillState>(`backfill:${channelId}`);
  }

  async saveBackfill(state: BackfillState): Promise<void> {
    await this.keyv.set(`backfill:${state.channelId}`, state);
  }

  async backfills(guildId: string): Promise<BackfillState[]> {
    const states = await Promise.all((await this.watched(guildId)).map((id) => this.backfill(id)));
    return states.filter((s): s is BackfillState => s !== undefined);
  }

  async autoRetrain(guildId: string): Promise<boolean> {
    return (await this.keyv.get<boolean>(`autoRetrain:${guildId}`)) ?? true;
  }

  async setAutoRetrain(guildId: string, on: boolean): Promise<void> {
    await this.keyv.set(`autoRetrain:${guildId}`, on);
  }

  async browse(messageId: string): Promise<BrowseState | undefined> {
    return this.keyv.get<BrowseState>(`browse:${messageId}`);
  }

  async saveBrowse(messageId: string, state: BrowseState, ttlMs: number): Promise<void> {
    await this.keyv.set(`browse:${messageId}`, state, ttlMs);
  }

  async endBrowse(messageId: string): Promise<void> {
    await this.keyv.delete(`browse:${messageId}`);
  }

  /** Whether the user asked (with /forget-me) that none of their images be indexed, in any guild. */
  async isOptedOut(userId: string): Promise<boolean> {
    return (await this.keyv.get<boolean>(`optOut:${userId}`)) === true;
  }

  async setOptedOut(userId: string, optedOut: boolean): Promise<void> {
    if (optedOut) await this.keyv.set(`optOut:${userId}`, true);
    else await this.keyv.delete(`optOut:${userId}`);
  }

  /** Every guild this file holds settings for (watched channels or switches). */
  async guildIds(): Promise<string[]> {
    const ids = new Set<string>();
    for await (const [key] of this.keyv.iterator?.(this.keyv.namespace) ?? []) {
      const match = /^(?:bot:)?(?:watch|autoRetrain):(\d+)$/.exec(String(key));
      if (match) ids.add(match[1]);
    }
    return [...ids];
  }

  /** Forgets a channel entirely (it was deleted). */
  async forgetChannel(guildId: string, channelId: string): Promise<void> {
    await this.unwatch(guildId, channelId);
  }

  /**
   * Every row this file holds for one guild (its watched channels, their backfill cursors and notice switches, its
   * own switches), for moving the guild to another machine; browsing states are short-lived and stay behind.
   */
  async guildEntries(guildId: string): Promise<Array<[string, unknown]>> {
    const keys = [`watch:${guildId}`, `autoRetrain:${guildId}`, ...(await this.watched(guildId)).flatMap((c) => [`backfill:${c}`, `reposts:${c}`])];
    const rows: Array<[string, unknown]> = [];
    for (const key of keys) {
      const value = await this.keyv.get<unknown>(key);
      if (value !== undefined) rows.push([key, value]);
    }
    return rows;
  }

  /** Writes rows that `guildEntries` read on another machine. */
  async restoreEntries(rows: Array<[string, unknown]>): Promise<void> {
    for (const [key, value] of rows) {
      if (!/^(watch|autoRetrain|backfill|reposts):\d+$/.test(key)) throw new Error(`not a guild setting: ${key}`);
      await this.keyv.set(key, value);
    }
  }

  /** Forgets a guild entirely (the bot was removed from it). */
  async forgetGuild(guildId: string): Promise<void> {
    for (const channelId of await this.watched(guildId)) {
      await this.keyv.delete(`backfill:${channelId}`);
      await this.keyv.delete(`reposts:${channelId}`);
    }
    await this.keyv.delete(`watch:${guildId}`);
    await this.keyv.delete(`autoRetrain:${guildId}`);
  }

  async close(): Promise<void> {
    await this.keyv.disconnect();
  }
}
