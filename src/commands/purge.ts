import { ApplicationCommandOptionType, ApplicationCommandType, MessageFlags } from 'discord.js';
import { editReplyOrPost } from '../bot/late-answer.js';
import type { SlashCommand } from './command.js';
import { GUILD_ONLY, MANAGE_GUILD, requireManageGuild } from './admin.js';

export const purge: SlashCommand = {
  data: {
    name: 'purge',
    description: 'Remove every indexed image of a channel and stop watching it',
    type: ApplicationCommandType.ChatInput,
    contexts: GUILD_ONLY,
    default_member_permissions: MANAGE_GUILD,
    options: [{ name: 'channel', description: 'The channel to purge', type: ApplicationCommandOptionType.Channel, required: true }],
  },
  async execute(ctx, interaction) {
    requireManageGuild(interaction);
    const guildId = interaction.guildId!;
    const channel = interaction.options.getChannel('channel', true);
    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    await ctx.settings.unwatch(guildId, channel.id);
    const removed = await ctx.engine.removeWhere((record) => record.extra?.channelId === channel.id, { namespace: guildId });
    await editReplyOrPost(ctx, interaction, { content: `Removed ${removed.length} image${removed.length === 1 ? '' : 's'} of <#${channel.id}> and stopped watching it.` });
  },
};
