import type { ClientOptions } from 'discord.js';
import type { BotConfig } from '../config.js';
import { createEngine, type Engine, type EngineOptions } from '../index/engine.js';
import type { Logger } from '../log.js';
import { createBot, type Bot } from './create-bot.js';
import { BotSettings } from '../bot/settings.js';

export interface WiredBot {
  bot: Bot;
  engine: Engine;
  settings: BotSettings;
  /** Lets queued work finish, disconnects, then closes the engine and the settings. */
  close(): Promise<void>;
}

/**
 * The real parts wired together: settings → engine → bot. Automatic retrains follow the per-guild switch and are
 * announced by the bot. `wrapEngine` lets a harness observe engine calls (the crash test reports each commit).
 */
export async function wireBot(options: {
  config: BotConfig;
  log: Logger;
  clientOptions?: Partial<ClientOptions>;
  engine?: Partial<EngineOptions>;
  wrapEngine?: (engine: Engine) => Engine;
}): Promise<WiredBot> {
  const { config, log } = options;
  const settings = await BotSettings.open(config.dataDir);
  const engine = createEngine({
    dataDir: config.dataDir,
    logger: log,
    threads: config.threads,
    preloadModel: true,
    retrainPolicy: config.retrainPolicy,
    autoRetrain: (guildId) => settings.autoRetrain(guildId),
    onAutoRetrain: (event) => bot.announceAutoRetrain(event),
    ...options.engine,
  });
  const bot = createBot({ config, engine: options.wrapEngine?.(engine) ?? engine, settings, log, clientOptions: options.clientOptions });
  return {
    bot,
    engine,
    settings,
    async close() {
      await bot.stop().catch(() => undefined);
      await engine.close();
      await settings.close();
    },
  };
}
