import { Events, type ClientEvents } from 'discord.js';
import type { BotContext } from '../bot/context.js';
import { onInteractionCreate } from './interaction-create.js';
import { onMessageCreate } from './message-create.js';
import { onMessageReactionAdd } from './message-reaction-add.js';
import { onMessageUpdate } from './message-update.js';
import { onChannelDelete, onGuildDelete, onMessageDelete, onMessageDeleteBulk } from './removals.js';

/** A handler of one Discord event: the bot's context, then the event's own arguments as discord.js emits them. */
export type EventHandler<E extends keyof ClientEvents> = (ctx: BotContext, ...args: ClientEvents[E]) => Promise<void>;

/** Every Discord event the bot listens to, and its handler; the app (src/app/create-bot.ts) subscribes each. */
export const eventHandlers: { [E in keyof ClientEvents]?: EventHandler<E> } = {
  [Events.InteractionCreate]: onInteractionCreate,
  [Events.MessageCreate]: onMessageCreate,
  [Events.MessageUpdate]: onMessageUpdate,
  [Events.MessageDelete]: onMessageDelete,
  [Events.MessageBulkDelete]: onMessageDeleteBulk,
  // A DM channel's deletion arrives here too; it holds no guild's images and is ignored by the handler.
  [Events.ChannelDelete]: (ctx, channel) => onChannelDelete(ctx, channel as { id: string; guildId?: string | null }),
  [Events.ThreadDelete]: onChannelDelete,
  [Events.GuildDelete]: onGuildDelete,
  [Events.MessageReactionAdd]: onMessageReactionAdd,
};
