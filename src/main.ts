import { existsSync } from 'node:fs';
import pino from 'pino';
import { createBot } from './bot/create-bot.js';
import { BotSettings } from './bot/settings.js';
import { loadBotConfig } from './config.js';
import { isAppError } from './errors.js';
import { createEngine } from './index/engine.js';

// The only place real parts are wired together: configuration → engine → bot → gateway.
async function main(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const config = loadBotConfig();
  const log = pino({ level: config.logLevel, redact: { paths: ['token', '*.token'], remove: true } });
  const settings = await BotSettings.open(config.dataDir);
  const engine = createEngine({
    dataDir: config.dataDir,
    logger: log,
    threads: config.threads,
    preloadModel: true,
    retrainPolicy: config.retrainPolicy,
    autoRetrain: (guildId) => settings.autoRetrain(guildId),
    onAutoRetrain: (event) => bot.announceAutoRetrain(event),
  });
  const bot = createBot({ config, engine, settings, log });
  const shutdown = async (signal: string) => {
    log.info(`${signal}: shutting down`);
    await bot.stop().catch(() => undefined);
    await engine.close();
    await settings.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  await bot.start();
}

main().catch((error: unknown) => {
  if (isAppError(error, 'CONFIG_INVALID')) {
    console.error(error.message);
    process.exit(78);
  }
  console.error(isAppError(error) ? error.message : error);
  process.exit(1);
});
