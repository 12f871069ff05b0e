// The bot process the backfill crash scenario kills (forked by backfill-scenario.ts): the real bot and engine, wired
// as in production, logged in to the parent's fake Discord. argv: BotChildArgs as JSON. An image is reported over
// IPC once engine.index has resolved for it, so the parent never counts one the engine had not acknowledged.
import { setTimeout as sleep } from 'node:timers/promises';
import { wireBot } from '../../src/app/wire.js';
import { loadBotConfig } from '../../src/config.js';
import type { Engine } from '../../src/index/engine.js';
import type { Logger } from '../../src/log.js';
import { fakeBotEnv, fakeClientOptions } from '../fake-discord/client.js';
import { sendToParent, type BotChildArgs, type BotChildMessage } from './protocol.js';

const args = JSON.parse(process.argv[2] ?? '{}') as BotChildArgs;
const send = (message: BotChildMessage) => sendToParent(message);
const forward = (level: string) => (message: string) => void send({ type: 'log', line: `${level} ${message}` });
const log: Logger = { debug: () => undefined, info: forward('info'), warn: forward('warn'), error: forward('error') };

function reportingCommits(engine: Engine): Engine {
  return {
    ...engine,
    async index(bytes, meta) {
      const result = await engine.index(bytes, meta);
      const { messageId = '', imageKey = '' } = meta.extra ?? {};
      await send({ type: 'ack', messageId, imageKey, id: result.record.id, sha256: result.record.sha256, status: result.status });
      return result;
    },
  };
}

await send({ type: 'started' });
const config = loadBotConfig({ ...fakeBotEnv(args), DATA_DIR: args.dataDir, AUTO_RETRAIN: 'false', REGISTER_COMMANDS: 'none' });
const wired = await wireBot({ config, log, clientOptions: fakeClientOptions(args), wrapEngine: reportingCommits });
await wired.bot.start();
await send({ type: 'ready' });
// On a first start the backfill begins only when the parent's /watch arrives, after 'ready'.
for (;;) {
  await wired.bot.idle();
  if ((await wired.settings.backfill(args.channelId))?.done) break;
  await sleep(50);
}
await wired.close();
await send({ type: 'done' });
process.exit(0);
