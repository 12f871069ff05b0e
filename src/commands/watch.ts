import { ApplicationCommandOptionType, ApplicationCommandType, ChannelType, MessageFlags, type ApplicationCommandOptionAllowedChannelType } from 'discord.js';
import { readableBy } from '../bot/access.js';
import type { SlashCommand } from './command.js';
import { MANAGE_GUILD, requireManageGuild } from './admin.js';

export const WATCHABLE_CHANNEL_TYPES: ApplicationCommandOptionAllowedChannelType[] = [ChannelType.GuildText, ChannelType.GuildAnnouncement, ChannelType.GuildForum, ChannelType.PublicThread];

export const watch: SlashCommand = {
  data: {
    name: 'watch',
    description: 'Index the images posted in a channel, including its history',
    type: ApplicationCommandType.ChatInput,
    dm_permission: false,
    default_member_permissions: MANAGE_GUILD,
    options: [
      { name: 'channel', description: 'The channel to watch', type: ApplicationCommandOptionType.Channel, channel_types: WATCHABLE_CHANNEL_TYPES, required: true },
    ],
  },
  async execute(ctx, interaction) {
    requireManageGuild(interaction);
    const channel = interaction.options.getChannel('channel', true);
    const added = await ctx.settings.watch(interaction.guildId!, channel.id);
    if (!added) {
      await interaction.reply({ content: `<#${channel.id}> is already watched.`, flags: MessageFlags.Ephemeral });
      return;
    }
    await interaction.reply({ content: `Now indexing new images in <#${channel.id}>. Reading its history:` });
    const status = await interaction.fetchReply();
    ctx.startBackfill(interaction.guildId!, channel.id, { channelId: status.channelId, messageId: status.id });
  },
};

export const unwatch: SlashCommand = {
  data: {
    name: 'unwatch',
    description: 'Stop indexing a channel (images already indexed stay searchable)',
    type: ApplicationCommandType.ChatInput,
    dm_permission: false,
    default_member_permissions: MANAGE_GUILD,
    options: [{ name: 'channel', description: 'The channel to stop watching', type: ApplicationCommandOptionType.Channel, required: true }],
  },
  async execute(ctx, interaction) {
    requireManageGuild(interaction);
    const channel = interaction.options.getChannel('channel', true);
    const removed = await ctx.settings.unwatch(interaction.guildId!, channel.id);
    await interaction.reply({
      content: removed ? `Stopped watching <#${channel.id}>.` : `<#${channel.id}> was not watched.`,
      flags: MessageFlags.Ephemeral,
    });
  },
};

export const watching: SlashCommand = {
  data: { name: 'watching', description: 'List the channels whose images are indexed', type: ApplicationCommandType.ChatInput, dm_permission: false },
  async execute(ctx, interaction) {
    const watched = await ctx.settings.watched(interaction.guildId!);
    // Only the channels the asker can read: the others' names are not theirs to see.
    const channels = await readableBy(interaction, watched);
    const list = channels.length === 0 ? 'No channel you can read is watched yet (an admin can use /watch).' : `Watching: ${channels.map((id) => `<#${id}>`).join(', ')}`;
    await interaction.reply({
      content: list,
      flags: MessageFlags.Ephemeral,
    });
  },
};
