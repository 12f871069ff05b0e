import { ApplicationCommandType } from 'discord.js';
import { answerRelevant, checkQueryRate } from '../bot/answer.js';
import { downloadPolicy } from '../bot/download-policy.js';
import { downloadImage } from '../bot/download.js';
import { imagesOf } from '../bot/message-images.js';
import { AppError } from '../errors.js';
import type { MessageMenuCommand } from './command.js';
import { MAX_RESULTS } from './relevant.js';
import { GUILD_ONLY } from './admin.js';

export const findRelevant: MessageMenuCommand = {
  data: { name: 'Find relevant images', type: ApplicationCommandType.Message, contexts: GUILD_ONLY },
  async execute(ctx, interaction) {
    checkQueryRate(ctx, interaction.user.id);
    const [image] = imagesOf(interaction.targetMessage, ctx.config.cdnHosts);
    if (!image) throw new AppError('IMAGE_UNSUPPORTED', 'That message has no image to search with.');
    await interaction.deferReply();
    const bytes = await downloadImage(image.url, downloadPolicy(ctx.config));
    await answerRelevant(ctx, interaction, bytes, { k: MAX_RESULTS, sameChannelOnly: false, ephemeral: false });
  },
};
