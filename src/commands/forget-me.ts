import { ApplicationCommandType, InteractionContextType, MessageFlags } from 'discord.js';
import { editReplyOrPost } from '../bot/late-answer.js';
import type { SlashCommand } from './command.js';

export const forgetMe: SlashCommand = {
  data: {
    name: 'forget-me',
    description: 'Remove every image you have posted from this bot’s index, in every server it shares with you',
    type: ApplicationCommandType.ChatInput,
    // It concerns the member, not one server: it works in a DM with the bot too.
    contexts: [InteractionContextType.Guild, InteractionContextType.BotDM],
  },
  async execute(ctx, interaction) {
    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    const userId = interaction.user.id;
    let removed = 0;
    for (const namespace of await ctx.engine.namespaces()) {
      removed += (await ctx.engine.removeWhere((record) => record.extra?.authorId === userId, { namespace })).length;
    }
    ctx.log.info(`forget-me: ${removed} image(s) of user ${userId} removed`);
    await editReplyOrPost(ctx, interaction, { content: `Removed ${removed} image${removed === 1 ? '' : 's'} you posted. New posts in watched channels are still indexed.` });
  },
};
