import type { Client } from 'discord.js';

/** The shards one bot process serves; `undefined` when it runs unsharded and so owns every guild. */
export interface ShardScope {
  ids: number[];
  total: number;
}

const SNOWFLAKE = /^\d{15,21}$/;

/** Discord's rule: a guild's events go to shard `(guild_id >> 22) % total`; DMs go to shard 0. */
export function shardOf(guildId: string, total: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(total));
}

/** The shards this client serves, as the ShardingManager started it (`client.shard`), or undefined when unsharded. */
export function shardScopeOf(client: Client): ShardScope | undefined {
  return client.shard ? { ids: [...client.shard.ids], total: client.shard.count } : undefined;
}

/**
 * Whether this process owns a namespace: a guild's data (folder, index, models, settings rows) is read and written
 * only by the process serving the guild's shard, so no SQLite file of a namespace is ever open in two processes.
 * A namespace that is not a guild id (the CLI's `local`) belongs to the process holding shard 0.
 */
export function ownsNamespace(scope: ShardScope | undefined, name: string): boolean {
  if (!scope) return true;
  return scope.ids.includes(SNOWFLAKE.test(name) ? shardOf(name, scope.total) : 0);
}

/** Commands are registered once per bot, not once per shard: by the process holding shard 0 (or the only one). */
export function registersCommands(scope: ShardScope | undefined): boolean {
  return !scope || scope.ids.includes(0);
}
