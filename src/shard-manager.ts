import type { ChildProcess } from 'node:child_process';
import { REST, Routes, ShardingManager, type RESTGetAPIGatewayBotResult, type Shard } from 'discord.js';
import type { BotConfig, ShardingConfig } from './config.js';
import type { Logger } from './log.js';

/** Discord lets a bot IDENTIFY once per 5 s (max_concurrency 1): shards are started that far apart. */
const SPAWN_DELAY_MS = 5_500;
/** A shard process loads the model and logs in before it reports ready; a slow disk can take a while. */
const READY_TIMEOUT_MS = 120_000;
/** How long a shard process gets to finish its queued work after SIGTERM before it is killed. */
const STOP_GRACE_MS = 30_000;

export interface RunningShards {
  manager: ShardingManager;
  /** Stops respawning, sends every shard process SIGTERM (each closes its engine cleanly) and waits for them. */
  stop(): Promise<void>;
}

/**
 * `npm start` with SHARDS / TOTAL_SHARDS / SHARD_LIST: discord.js's ShardingManager runs `file` (the bot's own entry)
 * once per shard in a child process and starts a new one whenever a shard process dies. The manager holds no
 * guild data; it only relays between shards (broadcastEval for /forget-me).
 */
export async function startShardManager(options: {
  config: BotConfig;
  sharding: Extract<ShardingConfig, { mode: 'manager' }>;
  log: Logger;
  file: string;
}): Promise<RunningShards> {
  const { config, sharding, log } = options;
  const total = sharding.total === 'auto' ? await recommendedShardCount(config) : sharding.total;
  const list = sharding.list ?? [...Array(total).keys()];
  const manager = new ShardingManager(options.file, { totalShards: total, shardList: list, token: config.token, mode: 'process', respawn: true });
  manager.on('shardCreate', (shard: Shard) => {
    // mode 'process': the shard's child is always a ChildProcess, never a Worker.
    shard.on('spawn', (child) => log.info(`shard ${shard.id} of ${total}: process ${(child as ChildProcess).pid} started`));
    shard.on('ready', () => log.info(`shard ${shard.id} of ${total}: ready`));
    shard.on('death', (process) => {
      const child = process as ChildProcess;
      log.warn(`shard ${shard.id} of ${total}: process ${child.pid} exited (${child.exitCode ?? child.signalCode})${manager.respawn ? '; starting it again' : ''}`);
    });
  });
  log.info(`sharding: running shard(s) ${list.join(', ')} of ${total}`);
  await manager.spawn({ amount: total, delay: SPAWN_DELAY_MS, timeout: READY_TIMEOUT_MS });
  return {
    manager,
    async stop() {
      manager.respawn = false;
      await Promise.all([...manager.shards.values()].map((shard) => stopShard(shard)));
    },
  };
}

async function stopShard(shard: Shard): Promise<void> {
  const child = shard.process;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

/**
 * `SHARDS=auto`: Discord's recommended shard count from GET /gateway/bot. discord.js's own
 * `fetchRecommendedShardCount` always asks discord.com; this asks the configured API (the fake Discord in tests).
 */
async function recommendedShardCount(config: BotConfig): Promise<number> {
  const rest = new REST(config.apiUrl ? { api: config.apiUrl } : {}).setToken(config.token);
  const gateway = (await rest.get(Routes.gatewayBot())) as RESTGetAPIGatewayBotResult;
  return Math.max(1, gateway.shards);
}
