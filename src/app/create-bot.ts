import { Client, Events, GatewayIntentBits, Partials, type ClientOptions } from 'discord.js';
import type { BotConfig } from '../config.js';
import type { AutoRetrainEvent, Engine } from '../index/engine.js';
import { describeSummary } from '../commands/retrain.js';
import type { Logger } from '../log.js';
import { onInteractionCreate } from '../events/interaction-create.js';
import { onMessageCreate } from '../events/message-create.js';
import { onMessageReactionAdd } from '../events/message-reaction-add.js';
import { onMessageUpdate } from '../events/message-update.js';
import { onChannelDelete, onGuildDelete, onMessageDelete, onMessageDeleteBulk } from '../events/removals.js';
import { createBackfiller } from './backfill.js';
import type { BotContext } from './context.js';
import { downloadPolicy } from './download-policy.js';
import { exposeForgetUser } from './forget-user.js';
import { IngestQueue } from './ingest.js';
import { InteractionReplies } from './interaction-replies.js';
import { honourOptOuts } from './opt-out.js';
import { RateLimiter } from './rate-limit.js';
import { reconcileChannels, reconcileGuilds } from './reconcile.js';
import { registerCommands } from './register-commands.js';
import type { BotSettings } from './settings.js';
import { registersCommands, shardScopeOf } from './shards.js';
import { errorTextFor } from './user-text.js';

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
  const guard =
    <A extends unknown[]>(name: string, handler: (ctx: BotContext, ...args: A) => Promise<void>) =>
    (...args: A) => {
      handler(context, ...args).catch((error: Error) => log.error(`${name} handler failed: ${error.stack ?? error.message}`));
    };
  client.on(Events.InteractionCreate, guard('interactionCreate', onInteractionCreate));
  client.on(Events.MessageCreate, guard('messageCreate', onMessageCreate));
  client.on(Events.MessageUpdate, guard('messageUpdate', onMessageUpdate));
  client.on(Events.MessageDelete, guard('messageDelete', onMessageDelete));
  client.on(Events.MessageBulkDelete, guard('messageDeleteBulk', onMessageDeleteBulk));
  client.on(Events.ChannelDelete, guard('channelDelete', (ctx, channel) => onChannelDelete(ctx, channel as { id: string; guildId?: string | null })));
  client.on(Events.ThreadDelete, guard('threadDelete', onChannelDelete));
  client.on(Events.GuildDelete, guard('guildDelete', onGuildDelete));
  client.on(Events.MessageReactionAdd, guard('messageReactionAdd', onMessageReactionAdd));
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
      const text =
        event.phase === 'started'
          ? 'This server now has enough images: I am training its own relevance model in the background. Searches keep working meanwhile.'
          : event.phase === 'finished'
            ? describeSummary(event.summary)
            : `The automatic retrain stopped: ${errorTextFor(event.error, event.namespace)} The current model stays active.`;
      void (async () => {
        const [channelId] = await settings.watched(event.namespace);
        const channel = channelId ? await client.channels.fetch(channelId).catch(() => null) : null;
        if (channel?.isSendable()) await channel.send({ content: text });
      })().catch((error: Error) => log.warn(`auto-retrain notice for ${event.namespace} failed: ${error.message}`));
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
