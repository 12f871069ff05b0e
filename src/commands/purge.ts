import { MessageFlags } from 'discord.js';
import { editReplyOrPost } from '../bot/late-answer.js';
import type { SlashCommand } from './command.js';
import { requireManageGuild } from './admin.js';
import { purgeDefinition } from './definitions.js';

export const purge: SlashCommand = {
  data: purgeDefinition,
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
