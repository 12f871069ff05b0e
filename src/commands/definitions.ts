import {
  ApplicationCommandOptionType,
  ApplicationCommandType,
  ChannelType,
  InteractionContextType,
  PermissionFlagsBits,
  type ApplicationCommandOptionAllowedChannelType,
  type RESTPostAPIApplicationCommandsJSONBody,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
  type RESTPostAPIContextMenuApplicationCommandsJSONBody,
} from 'discord.js';
import { MAX_RESULTS } from '../bot/limits.js';

// What Discord is told about each command (name, options, where it is offered, who may use it), apart from the
// handlers, so that `npm run register` (scripts/register-commands.ts) loads this data and nothing that runs them.

const MANAGE_GUILD = String(PermissionFlagsBits.ManageGuild);

/**
 * The `contexts` of every command that works on a server's images: offered in servers only (replacing the deprecated
 * `dm_permission: false`). A use from elsewhere is answered by the interaction handler with a sentence.
 */
const GUILD_ONLY = [InteractionContextType.Guild];

/** /forget-me concerns the member, not one server, and /index-me undoes it: both work in a DM with the bot too. */
const GUILD_OR_DM = [InteractionContextType.Guild, InteractionContextType.BotDM];

const WATCHABLE_CHANNEL_TYPES: ApplicationCommandOptionAllowedChannelType[] = [ChannelType.GuildText, ChannelType.GuildAnnouncement, ChannelType.GuildForum, ChannelType.PublicThread];

type SlashDefinition = RESTPostAPIChatInputApplicationCommandsJSONBody;

export const relevantDefinition: SlashDefinition = {
  name: 'relevant',
  description: 'Find the earlier images in this server most relevant to an image',
  type: ApplicationCommandType.ChatInput,
  contexts: GUILD_ONLY,
  options: [
    { name: 'image', description: 'The image to search with', type: ApplicationCommandOptionType.Attachment, required: true },
    { name: 'k', description: `How many results (1–${MAX_RESULTS})`, type: ApplicationCommandOptionType.Integer, min_value: 1, max_value: MAX_RESULTS },
    {
      name: 'scope',
      description: 'Search the whole server (default) or only this channel',
      type: ApplicationCommandOptionType.String,
      choices: [
        { name: 'server', value: 'server' },
        { name: 'channel', value: 'channel' },
      ],
    },
    { name: 'private', description: 'Show the results only to you', type: ApplicationCommandOptionType.Boolean },
  ],
};

export const findRelevantDefinition: RESTPostAPIContextMenuApplicationCommandsJSONBody = {
  name: 'Find relevant images',
  type: ApplicationCommandType.Message,
  contexts: GUILD_ONLY,
};

export const watchDefinition: SlashDefinition = {
  name: 'watch',
  description: 'Index the images posted in a channel, including its history',
  type: ApplicationCommandType.ChatInput,
  contexts: GUILD_ONLY,
  default_member_permissions: MANAGE_GUILD,
  options: [
    { name: 'channel', description: 'The channel to watch', type: ApplicationCommandOptionType.Channel, channel_types: WATCHABLE_CHANNEL_TYPES, required: true },
    {
      name: 'reposts',
      description: 'Reply when an image posted there was posted before (off by default)',
      type: ApplicationCommandOptionType.String,
      choices: [
        { name: 'notify', value: 'notify' },
        { name: 'off', value: 'off' },
      ],
    },
  ],
};

export const unwatchDefinition: SlashDefinition = {
  name: 'unwatch',
  description: 'Stop indexing a channel (images already indexed stay searchable)',
  type: ApplicationCommandType.ChatInput,
  contexts: GUILD_ONLY,
  default_member_permissions: MANAGE_GUILD,
  options: [{ name: 'channel', description: 'The channel to stop watching', type: ApplicationCommandOptionType.Channel, required: true }],
};

export const watchingDefinition: SlashDefinition = {
  name: 'watching',
  description: 'List the channels whose images are indexed',
  type: ApplicationCommandType.ChatInput,
  contexts: GUILD_ONLY,
};

export const retrainDefinition: SlashDefinition = {
  name: 'retrain',
  description: "Retrain this server's relevance model on its own images",
  type: ApplicationCommandType.ChatInput,
  contexts: GUILD_ONLY,
  default_member_permissions: MANAGE_GUILD,
  options: [
    { name: 'force', description: 'Use the new model even if the quality check prefers the current one', type: ApplicationCommandOptionType.Boolean },
    { name: 'auto', description: 'Switch automatic retraining on or off instead of retraining now', type: ApplicationCommandOptionType.Boolean },
  ],
};

export const relevanceStatusDefinition: SlashDefinition = {
  name: 'relevance-status',
  description: 'Images indexed, queue, backfill progress and model version',
  type: ApplicationCommandType.ChatInput,
  contexts: GUILD_ONLY,
};

export const forgetMeDefinition: SlashDefinition = {
  name: 'forget-me',
  description: 'Remove every image you have posted from this bot’s index, everywhere, and stop indexing yours',
  type: ApplicationCommandType.ChatInput,
  contexts: GUILD_OR_DM,
};

export const indexMeDefinition: SlashDefinition = {
  name: 'index-me',
  description: 'Undo /forget-me: let this bot index the images you post in watched channels again',
  type: ApplicationCommandType.ChatInput,
  contexts: GUILD_OR_DM,
};

export const purgeDefinition: SlashDefinition = {
  name: 'purge',
  description: 'Remove every indexed image of a channel and stop watching it',
  type: ApplicationCommandType.ChatInput,
  contexts: GUILD_ONLY,
  default_member_permissions: MANAGE_GUILD,
  options: [{ name: 'channel', description: 'The channel to purge', type: ApplicationCommandOptionType.Channel, required: true }],
};

export const repostsDefinition: SlashDefinition = {
  name: 'reposts',
  description: 'Was this image posted in this server before? Lists the earlier posts you can see',
  type: ApplicationCommandType.ChatInput,
  contexts: GUILD_ONLY,
  options: [
    { name: 'image', description: 'The image to look for', type: ApplicationCommandOptionType.Attachment, required: true },
    { name: 'private', description: 'Show the answer only to you', type: ApplicationCommandOptionType.Boolean },
  ],
};

/** What gets registered with Discord, in the order it always was. */
export const commandDefinitions: RESTPostAPIApplicationCommandsJSONBody[] = [
  relevantDefinition,
  watchDefinition,
  unwatchDefinition,
  watchingDefinition,
  retrainDefinition,
  relevanceStatusDefinition,
  forgetMeDefinition,
  indexMeDefinition,
  purgeDefinition,
  repostsDefinition,
  findRelevantDefinition,
];
