import { Client, Events, GatewayIntentBits, Partials, type ClientEvents, type ClientOptions } from 'discord.js';
import { createBackfiller } from '../bot/backfill.js';
import type { BotContext } from '../bot/context.js';
import { downloadPolicy } from '../bot/download-policy.js';
import { exposeForgetUser } from '../bot/forget-user.js';
import { IngestQueue } from '../bot/ingest.js';
import { InteractionReplies } from '../bot/interaction-replies.js';
import { honourOptOuts } from '../bot/opt-out.js';
import { RateLimiter } from '../bot/rate-limit.js';
import { reconcileChannels, reconcileGuilds } from '../bot/reconcile.js';
import { announceAutoRetrain } from '../bot/retrain-notices.js';
import type { BotSettings } from '../bot/settings.js';
import { registersCommands, shardScopeOf } from '../bot/shards.js';
import type { BotConfig } from '../config.js';
import { eventHandlers, type EventHandler } from '../events/index.js';
import type { AutoRetrainEvent, Engine } from '../index/engine.js';
import type { Logger } from '../log.js';
import { registerCommands } from './register-commands.js';

/**
 * Messages ingested at once: download, decode (libuv's threads) and the model (its worker) overlap, and the
 * benchmark's ingest reached 41 uploads/s on 2 cores with 4 in flight.
 */
const INGEST_CONCURRENCY = 4;
const INGEST_BACKLOG = 10_000;
/** /forget-me reads every stored image of every guild; a few times an hour is plenty for one person. */
const FORGET_ME_PER_HOUR = 3;

export interface Bot {
  client: Client;
  context: BotContext;
  /** Logs in and resolves once the gateway session is ready (not merely when login() resolves). */
  start(): Promise<void>;
  /** Lets queued work finish, then disconnects. */
  stop(): Promise<void>;
  /** Resolves when queued ingestion and running backfills are done (tests wait on it). */
  idle(): Promise<void>;
  /** Posts a short notice about an automatic retrain in the guild's first watched channel. */
  announceAutoRetrain(event: AutoRetrainEvent): void;
}

export function createBot(deps: { config: BotConfig; engine: Engine; settings: BotSettings; log: Logger; clientOptions?: Partial<ClientOptions> }): Bot {
  const { config, settings, log } = deps;
  const engine = honourOptOuts(deps.engine, settings);
  const client = new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent, GatewayIntentBits.GuildMessageReactions],
    // Reactions and deletions on messages sent before this process started arrive uncached.
    partials: [Partials.Message, Partials.Channel, Partials.Reaction, Partials.User],
    ...(config.apiUrl ? { rest: { api: config.apiUrl } } : {}),
    ...deps.clientOptions,
  });
  const ingest = new IngestQueue(INGEST_CONCURRENCY, INGEST_BACKLOG, log);
  const backfiller = createBackfiller({ client, engine, settings, policy: downloadPolicy(config), log });
  const context: BotContext = {
    client,
    engine,
    settings,
    config,
    log,
    ingest,
    queryLimiter: new RateLimiter(config.queriesPerMinute, 60_000),
    replies: new InteractionReplies(),
    forgetMeLimiter: new RateLimiter(FORGET_ME_PER_HOUR, 3_600_000),
    startBackfill: (guildId, channelId, status) => backfiller.start(guildId, channelId, status),
  };

  exposeForgetUser(context);
  let reconciling: Promise<void> = Promise.resolve();

  // Every handler's failure is logged here so that one bad event never takes the process down.
  const listen = <E extends keyof ClientEvents>(event: E, handler: EventHandler<E>) =>
    client.on(event, (...args: ClientEvents[E]) => {
      handler(context, ...args).catch((error: Error) => log.error(`${event} handler failed: ${error.stack ?? error.message}`));
    });
  for (const event of Object.keys(eventHandlers) as Array<keyof ClientEvents>) listen(event, eventHandlers[event] as EventHandler<typeof event>);
  client.on(Events.ShardDisconnect, (event, shard) => log.warn(`gateway shard ${shard} disconnected (code ${event.code})`));
  client.on(Events.ShardResume, (shard, replayed) => log.info(`gateway shard ${shard} resumed (${replayed} events replayed)`));
  client.on(Events.Error, (error) => log.error(`discord client error: ${error.message}`));

  return {
    client,
    context,
    async start() {
      const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
      await client.login(config.token);
      await ready;
      log.info(`logged in as ${client.user?.tag} in ${client.guilds.cache.size} guild(s)`);
      if (config.registerCommands !== 'none' && client.application && registersCommands(shardScopeOf(client))) {
        const count = await registerCommands(client.rest, client.application.id, config.registerCommands);
        log.info(`registered ${count} commands (${config.registerCommands})`);
      }
      const deps = { client, engine, settings, log };
      await reconcileGuilds(deps);
      await backfiller.resumeAll([...client.guilds.cache.keys()]);
      reconciling = reconcileChannels(deps).catch((error: Error) => log.error(`start-up channel check failed: ${error.message}`));
    },
    async stop() {
      await ingest.idle();
      await client.destroy();
    },
    announceAutoRetrain(event) {
      announceAutoRetrain({ client, settings, log }, event);
    },
    async idle() {
      await reconciling;
      for (;;) {
        await ingest.idle();
        await backfiller.idle();
        if (ingest.length === 0) return;
      }
    },
  };
}
