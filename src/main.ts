import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import pino from 'pino';
import { wireBot } from './app/wire.js';
import { loadBotConfig, loadShardingConfig } from './config.js';
import { isAppError } from './errors.js';
import { redactingLogger, redactSecrets } from './log.js';
import { startShardManager } from './shard-manager.js';

/** The bot token once it is read; the report of a fatal error blanks it as the log does. */
let secrets: string[] = [];

// Configuration and the real logger → the wired bot (src/app/wire.ts) → gateway; or, sharded, the manager that runs
// this same file once per shard (src/shard-manager.ts).
async function main(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const config = loadBotConfig();
  secrets = [config.token];
  // Everything is logged as text (pino's key-based redaction never sees it), so the text itself is cleaned.
  const log = redactingLogger(pino({ level: config.logLevel }), secrets);
  const sharding = loadShardingConfig();
  if (sharding.mode === 'manager') {
    // This process only supervises: each shard process runs this same file (mode 'shard') with the bot in it.
    const shards = await startShardManager({ config, sharding, log, file: fileURLToPath(import.meta.url) });
    const stopAll = async (signal: string) => {
      log.info(`${signal}: stopping every shard`);
      await shards.stop();
      process.exit(0);
    };
    process.once('SIGINT', () => void stopAll('SIGINT'));
    process.once('SIGTERM', () => void stopAll('SIGTERM'));
    return;
  }
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
  // Printed whole: an inspected REST error shows its request URL and body.
  console.error(redactSecrets(isAppError(error) ? error.message : inspect(error), secrets));
  process.exit(1);
});
