import { DiscordAPIError, RESTJSONErrorCodes, type Client, type Guild } from 'discord.js';
import type { Engine } from '../index/engine.js';
import type { Logger } from '../log.js';
import type { BotSettings } from './settings.js';
import { ownsNamespace, shardScopeOf } from './shards.js';

interface Deps {
  client: Client;
  engine: Engine;
  settings: BotSettings;
  log: Logger;
}

const SNOWFLAKE = /^\d{15,21}$/;

/**
 * Start-up, part one (cheap, before backfills resume): what changed while the bot was offline and no event said
 * so. A guild that has images or settings but is no longer among the guilds the gateway lists (READY lists every
 * guild the bot is in, unavailable ones too), and that Discord confirms is gone, is dropped with its settings; a
 * watched channel that Discord confirms is deleted has its images removed and is unwatched.
 */
export async function reconcileGuilds(deps: Deps): Promise<void> {
  const { client, engine, settings, log } = deps;
  // Sharded, the guilds of other shards are absent from this client's cache but not gone: only this process's own count.
  const scope = shardScopeOf(client);
  const names = [...(await engine.namespaces()), ...(await settings.guildIds())].filter((name) => SNOWFLAKE.test(name) && ownsNamespace(scope, name));
  for (const guildId of new Set(names)) {
    if (client.guilds.cache.has(guildId)) continue;
    if (!(await confirmedGone(() => client.guilds.fetch({ guild: guildId, force: true }), RESTJSONErrorCodes.UnknownGuild, log, `guild ${guildId}`))) continue;
    const images = await engine.stats(guildId).then((s) => s.images, () => 0);
    await settings.forgetGuild(guildId);
    await engine.dropNamespace(guildId);
    log.info(`start-up: the bot is no longer in guild ${guildId} (left while offline): its ${images} image(s) and settings were deleted`);
  }
  for (const guild of client.guilds.cache.values()) {
    if (!guild.available) continue;
    for (const channelId of await settings.watched(guild.id)) await dropIfDeleted(deps, guild, channelId, 'watched ');
  }
}

/**
 * Start-up, part two (a full scan of each guild's references, so it runs in the background): images from channels
 * (or threads) that no longer exist, whether or not they are still watched, are removed.
 */
export async function reconcileChannels(deps: Deps): Promise<void> {
  for (const guild of deps.client.guilds.cache.values()) {
    if (!guild.available || !(await deps.engine.namespaces()).includes(guild.id)) continue;
    const unknown = new Set<string>();
    for await (const view of deps.engine.references({ namespace: guild.id })) {
      // A thread's or forum post's images carry the watched channel and the thread: either may be gone.
      for (const channelId of [view.extra?.channelId, view.extra?.threadId]) if (channelId && !guild.channels.cache.has(channelId)) unknown.add(channelId);
    }
    for (const channelId of unknown) await dropIfDeleted(deps, guild, channelId, '');
  }
}

/** A channel missing from the cache may be an archived thread: only Discord's 10003 Unknown Channel says it is gone. */
async function dropIfDeleted(deps: Deps, guild: Guild, channelId: string, what: string): Promise<void> {
  if (guild.channels.cache.has(channelId)) return;
  const fetch = () => deps.client.channels.fetch(channelId, { force: true });
  if (!(await confirmedGone(fetch, RESTJSONErrorCodes.UnknownChannel, deps.log, `channel ${channelId}`))) return;
  await deps.settings.forgetChannel(guild.id, channelId);
  const removed = await deps.engine.removeWhere((view) => view.extra?.channelId === channelId || view.extra?.threadId === channelId, { namespace: guild.id });
  deps.log.info(`start-up: ${what}channel ${channelId} of guild ${guild.id} was deleted while the bot was offline: ${removed.length} image reference(s) removed, no longer watched`);
}

/**
 * True when Discord answers that the thing does not exist (`code`) or that the bot has no access to a guild it is
 * not in (50001). Anything else (a network fault, a 5xx) keeps the data: it is checked again at the next start.
 */
async function confirmedGone(fetch: () => Promise<unknown>, code: number, log: Logger, what: string): Promise<boolean> {
  try {
    await fetch();
    return false;
  } catch (error) {
    if (error instanceof DiscordAPIError && (error.code === code || (code === RESTJSONErrorCodes.UnknownGuild && error.code === RESTJSONErrorCodes.MissingAccess))) return true;
    log.warn(`start-up: could not check ${what} (${(error as Error).message}); its data is kept`);
    return false;
  }
}
