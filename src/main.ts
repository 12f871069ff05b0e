import { existsSync } from 'node:fs';
import pino from 'pino';
import { wireBot } from './bot/wire.js';
import { loadBotConfig } from './config.js';
import { isAppError } from './errors.js';

// Configuration and the real logger → the wired bot (src/bot/wire.ts) → gateway.
async function main(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const config = loadBotConfig();
  const log = pino({ level: config.logLevel, redact: { paths: ['token', '*.token'], remove: true } });
  const { bot, close } = await wireBot({ config, log });
  const shutdown = async (signal: string) => {
    log.info(`${signal}: shutting down`);
    await close();
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
