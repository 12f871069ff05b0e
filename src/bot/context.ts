import type { Client } from 'discord.js';
import type { BotConfig } from '../config.js';
import type { Engine } from '../index/engine.js';
import type { Logger } from '../log.js';
import type { IngestQueue } from './ingest.js';
import type { RateLimiter } from './rate-limit.js';
import type { BotSettings } from './settings.js';

/** Everything a command or event handler needs, passed explicitly (no globals). */
export interface BotContext {
  client: Client;
  engine: Engine;
  settings: BotSettings;
  config: BotConfig;
  log: Logger;
  ingest: IngestQueue;
  queryLimiter: RateLimiter;
  /** /forget-me per user: it scans every guild's images. */
  forgetMeLimiter: RateLimiter;
  /** Starts (or resumes) a channel's history backfill; returns at once. */
  startBackfill(guildId: string, channelId: string, status?: { channelId: string; messageId: string }): void;
}
