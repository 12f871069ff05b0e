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
  /** Where slash commands are registered at start-up: 'global', a guild id, or 'none' (use `npm run register`). */
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
      REGISTER_COMMANDS: str({ default: 'global' }),
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
