import { resolve } from 'node:path';
import { bool, cleanEnv, num, str, url } from 'envalid';
import { AppError } from './errors.js';
import { LOG_LEVELS, type LogLevel } from './log.js';

/** Everything the engine's surfaces read from the environment; the only reader of process.env. */
export interface EngineConfig {
  dataDir: string;
  logLevel: LogLevel;
  threads: number;
  retrainPolicy: { minImages: number; growth: number } | false;
}

export function loadEngineConfig(env: NodeJS.ProcessEnv = process.env): EngineConfig {
  const parsed = cleanEnv(
    env,
    {
      DATA_DIR: str({ default: './data', desc: 'where stores, indexes and models are kept' }),
      LOG_LEVEL: str({ choices: [...LOG_LEVELS], default: 'info' }),
      INFERENCE_THREADS: num({ default: 1, desc: 'onnxruntime threads for MobileNetV2' }),
      AUTO_RETRAIN: bool({ default: true, desc: 'train a namespace VAE by itself once it has enough images' }),
      AUTO_RETRAIN_MIN_IMAGES: num({ default: 500, desc: 'from the learning curve in docs/relevance.md' }),
      AUTO_RETRAIN_GROWTH: num({ default: 2, desc: 'retrain again when the collection has grown by this factor' }),
    },
    { reporter: reportInvalid },
  );
  return {
    dataDir: resolve(parsed.DATA_DIR),
    logLevel: parsed.LOG_LEVEL as LogLevel,
    threads: Math.max(1, Math.floor(parsed.INFERENCE_THREADS)),
    retrainPolicy: parsed.AUTO_RETRAIN ? { minImages: parsed.AUTO_RETRAIN_MIN_IMAGES, growth: parsed.AUTO_RETRAIN_GROWTH } : false,
  };
}

function reportInvalid({ errors }: { errors: Partial<Record<string, Error>> }): void {
  const names = Object.keys(errors);
  if (names.length === 0) return;
  const detail = names.map((name) => `${name}: ${errors[name]?.message ?? 'invalid'}`).join('; ');
  throw new AppError('CONFIG_INVALID', `Invalid environment: ${detail}`);
}

/** The bot's settings on top of the engine's. `DISCORD_TOKEN` is required; the rest has working defaults. */
export interface BotConfig extends EngineConfig {
  token: string;
  /** Base URL of Discord's REST API (tests point it at the local fake Discord). */
  apiUrl?: string;
  /** Hosts images may be downloaded from (Discord's CDN, and its media proxy for the pictures of link embeds). */
  cdnHosts: string[];
  /** Test mode only: allow plain http and loopback hosts for the CDN. */
  allowInsecureCdn: boolean;
  /**
   * Where slash commands are registered at start-up: 'none' (the default: registering is a set-up step, `npm run
   * register`, as commands only change with the code), 'global', or a guild id.
   */
  registerCommands: string;
  maxDownloadBytes: number;
  /** How long a result message can still be browsed with reactions. */
  browseTtlMinutes: number;
  /** Most /relevant queries one user may run per minute. */
  queriesPerMinute: number;
}

export function loadBotConfig(env: NodeJS.ProcessEnv = process.env): BotConfig {
  const engine = loadEngineConfig(env);
  const parsed = cleanEnv(
    env,
    {
      DISCORD_TOKEN: str({ default: '', desc: 'the bot token from the Discord developer portal' }),
      DISCORD_API_URL: url({ default: undefined }),
      // images-ext-*: Discord's media proxy, which serves the pictures of link embeds (their `proxy_url`).
      CDN_HOSTS: str({ default: 'cdn.discordapp.com,media.discordapp.net,images-ext-1.discordapp.net,images-ext-2.discordapp.net' }),
      ALLOW_INSECURE_CDN: bool({ default: false }),
      REGISTER_COMMANDS: str({ default: 'none', desc: "'none', 'global' or a guild id: where start-up registers the commands" }),
      MAX_DOWNLOAD_MB: num({ default: 25 }),
      BROWSE_TTL_MINUTES: num({ default: 60 * 24 }),
      QUERIES_PER_MINUTE: num({ default: 6 }),
    },
    { reporter: reportInvalid },
  );
  if (!parsed.DISCORD_TOKEN) {
    throw new AppError(
      'CONFIG_INVALID',
      'DISCORD_TOKEN is not set: put the bot token in the environment or in .env (see README). To use the engine without Discord, run `npx relevant --help`.',
    );
  }
  return {
    ...engine,
    token: parsed.DISCORD_TOKEN,
    apiUrl: parsed.DISCORD_API_URL,
    cdnHosts: parsed.CDN_HOSTS.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean),
    allowInsecureCdn: parsed.ALLOW_INSECURE_CDN,
    registerCommands: parsed.REGISTER_COMMANDS,
    maxDownloadBytes: Math.round(parsed.MAX_DOWNLOAD_MB * 1024 * 1024),
    browseTtlMinutes: parsed.BROWSE_TTL_MINUTES,
    queriesPerMinute: parsed.QUERIES_PER_MINUTE,
  };
}

/**
 * How `npm start` runs the bot. `single` (no SHARDS, TOTAL_SHARDS or SHARD_LIST set): one process, one gateway
 * connection, as before sharding existed. `manager`: a ShardingManager process starting one bot process per shard
 * of `list` (default: all of them) out of `total` (`auto`: Discord's recommended count from /gateway/bot).
 * `shard`: one of those bot processes; the manager set SHARDING_MANAGER, and SHARDS / SHARD_COUNT for discord.js,
 * which reads them itself (so SHARDS means the shard's id there, not the operator's setting).
 */
export type ShardingConfig = { mode: 'single' } | { mode: 'shard' } | { mode: 'manager'; total: number | 'auto'; list?: number[] };

export function loadShardingConfig(env: NodeJS.ProcessEnv = process.env): ShardingConfig {
  if (env.SHARDING_MANAGER) return { mode: 'shard' };
  const parsed = cleanEnv(
    env,
    {
      SHARDS: str({ default: '', desc: 'auto, or how many shards to run here (all of them)' }),
      TOTAL_SHARDS: str({ default: '', desc: 'the shard count of the whole bot, when this machine runs only SHARD_LIST' }),
      SHARD_LIST: str({ default: '', desc: 'the shard ids this machine runs, e.g. 0-3 or 0,2' }),
    },
    { reporter: reportInvalid },
  );
  const shards = parsed.SHARDS.trim().toLowerCase();
  const totalText = parsed.TOTAL_SHARDS.trim();
  const listText = parsed.SHARD_LIST.trim();
  if (!shards && !totalText && !listText) return { mode: 'single' };
  const count = (name: string, text: string) => {
    if (!/^\d+$/.test(text) || Number(text) < 1) throw new AppError('CONFIG_INVALID', `Invalid environment: ${name} must be a whole number of shards (at least 1), got "${text}"`);
    return Number(text);
  };
  if (shards && shards !== 'auto' && totalText && count('SHARDS', shards) !== count('TOTAL_SHARDS', totalText)) {
    throw new AppError('CONFIG_INVALID', 'Invalid environment: SHARDS and TOTAL_SHARDS disagree; set TOTAL_SHARDS (with SHARD_LIST) or SHARDS, not both');
  }
  const total = totalText ? count('TOTAL_SHARDS', totalText) : !shards || shards === 'auto' ? 'auto' : count('SHARDS', shards);
  if (!listText) return { mode: 'manager', total };
  if (total === 'auto') {
    throw new AppError('CONFIG_INVALID', 'Invalid environment: SHARD_LIST needs TOTAL_SHARDS (every machine must agree on the shard count)');
  }
  return { mode: 'manager', total, list: parseShardList(listText, total) };
}

/** "0-3,6" → [0, 1, 2, 3, 6]; every id below `total`. */
function parseShardList(text: string, total: number): number[] {
  const ids = new Set<number>();
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part);
    const [from, to] = match ? [Number(match[1]), Number(match[2] ?? match[1])] : [NaN, NaN];
    if (!match || from > to || to >= total) {
      throw new AppError('CONFIG_INVALID', `Invalid environment: SHARD_LIST part "${part}" is not a shard id or range below TOTAL_SHARDS (${total})`);
    }
    for (let id = from; id <= to; id++) ids.add(id);
  }
  if (ids.size === 0) throw new AppError('CONFIG_INVALID', 'Invalid environment: SHARD_LIST names no shard');
  return [...ids].sort((a, b) => a - b);
}
