import { MessageFlags } from 'discord.js';
import { forgetUserEverywhere } from '../bot/forget-user.js';
import { editReplyOrPost } from '../bot/late-answer.js';
import { AppError } from '../errors.js';
import type { SlashCommand } from './command.js';
import { forgetMeDefinition, indexMeDefinition } from './definitions.js';

export const forgetMe: SlashCommand = {
  data: forgetMeDefinition,
  async execute(ctx, interaction) {
    const userId = interaction.user.id;
    // Each use scans every server's images; the opt-out itself lasts, so refusing a repeat loses nothing.
    const waitMs = ctx.forgetMeLimiter.take(userId);
    if (waitMs > 0) {
      await ctx.settings.setOptedOut(userId, true);
      throw new AppError('RATE_LIMITED', `You used /forget-me a moment ago and I still do not index your images; you can run it again in ${Math.ceil(waitMs / 60_000)} min.`);
    }
    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    // Opted out first, so nothing indexed during the scan below survives it (see honourOptOuts).
    await ctx.settings.setOptedOut(userId, true);
    const removed = await forgetUserEverywhere(ctx, userId);
    ctx.log.info(`forget-me: ${removed} image(s) of user ${userId} removed; user opted out`);
    await editReplyOrPost(ctx, interaction, {
      content:
        `Removed ${removed} image${removed === 1 ? '' : 's'} you posted, and your 👍/👎 on results, in every server I share with you. ` +
        'This lasts: I will not index your images again anywhere, also not when a channel’s history is read again. ' +
        'To undo it for your future posts, use /index-me.',
    });
  },
};

export const indexMe: SlashCommand = {
  data: indexMeDefinition,
  async execute(ctx, interaction) {
    const was = await ctx.settings.isOptedOut(interaction.user.id);
    await ctx.settings.setOptedOut(interaction.user.id, false);
    await interaction.reply({
      content: was
        ? 'Done: images you post in watched channels are indexed again. Images removed by /forget-me come back only if a channel’s history is read again.'
        : 'Your images are already indexed (you have not used /forget-me).',
      flags: MessageFlags.Ephemeral,
    });
  },
};
