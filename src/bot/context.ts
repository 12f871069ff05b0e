import type { Client, RepliableInteraction } from 'discord.js';
import type { BotConfig } from '../config.js';
import type { Engine } from '../index/engine.js';
import type { Logger } from '../log.js';
import type { IngestQueue } from './ingest.js';
import type { InteractionReplies } from './interaction-replies.js';
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
  /** The webhooks of recent public interaction replies, through which those replies are edited. */
  replies: InteractionReplies;
  /** /forget-me per user: it scans every guild's images. */
  forgetMeLimiter: RateLimiter;
  /** Starts (or resumes) a channel's history backfill; returns at once. */
  startBackfill(guildId: string, channelId: string, status?: BackfillStatusMessage): void;
}

/** The /watch reply that reports a backfill's progress, and the interaction it answers (for editing it). */
export interface BackfillStatusMessage {
  channelId: string;
  messageId: string;
  interaction: RepliableInteraction;
}
