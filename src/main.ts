import { existsSync } from 'node:fs';
import { inspect } from 'node:util';
import pino from 'pino';
import { createBot } from './bot/create-bot.js';
import { BotSettings } from './bot/settings.js';
import { loadBotConfig } from './config.js';
import { isAppError } from './errors.js';
import { createEngine } from './index/engine.js';
import { redactingLogger, redactSecrets } from './log.js';

/** The bot token once it is read; the report of a fatal error blanks it as the log does. */
let secrets: string[] = [];

// The only place real parts are wired together: configuration → engine → bot → gateway.
async function main(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const config = loadBotConfig();
  secrets = [config.token];
  // Everything is logged as text (pino's key-based redaction never sees it), so the text itself is cleaned.
  const log = redactingLogger(pino({ level: config.logLevel }), secrets);
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
  // Printed whole: an inspected REST error shows its request URL and body.
  console.error(redactSecrets(isAppError(error) ? error.message : inspect(error), secrets));
  process.exit(1);
});
