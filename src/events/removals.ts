import type { Guild, ReadonlyCollection, GuildBasedChannel, Message, PartialMessage, Snowflake } from 'discord.js';
import type { BotContext } from '../bot/context.js';

/** A deleted message's images leave the store and the index at once. */
export async function onMessageDelete(ctx: BotContext, message: Message | PartialMessage): Promise<void> {
  if (!message.guildId) return;
  const removed = await ctx.engine.removeByRef(message.id, { namespace: message.guildId });
  if (removed.length > 0) ctx.log.info(`message ${message.id} deleted: ${removed.length} image reference(s) removed`);
}

export async function onMessageDeleteBulk(ctx: BotContext, messages: ReadonlyCollection<Snowflake, Message | PartialMessage>): Promise<void> {
  for (const message of messages.values()) await onMessageDelete(ctx, message);
}

/** A deleted channel (or thread) takes its images with it and stops being watched. */
export async function onChannelDelete(ctx: BotContext, channel: GuildBasedChannel | { id: string; guildId?: string | null }): Promise<void> {
  const guildId = 'guild' in channel ? channel.guild.id : channel.guildId;
  if (!guildId) return;
  await ctx.settings.forgetChannel(guildId, channel.id);
  // A thread's images are stored under its watched channel, with the thread's id beside it.
  const removed = await ctx.engine.removeWhere((record) => record.extra?.channelId === channel.id || record.extra?.threadId === channel.id, { namespace: guildId });
  ctx.log.info(`channel ${channel.id} deleted: ${removed.length} image reference(s) removed`);
}

/** Removed from a guild (kicked, or the guild was deleted): everything of that guild goes. */
export async function onGuildDelete(ctx: BotContext, guild: Guild): Promise<void> {
  if (!guild.available) return; // an outage, not a removal
  await ctx.settings.forgetGuild(guild.id);
  await ctx.engine.dropNamespace(guild.id);
  ctx.log.info(`left guild ${guild.id}: its images and settings were deleted`);
}
