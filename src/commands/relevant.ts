import { ApplicationCommandOptionType, ApplicationCommandType, MessageFlags, type ChatInputCommandInteraction } from 'discord.js';
import type { BotContext } from '../bot/context.js';
import { answerRelevant, checkQueryRate } from '../bot/answer.js';
import { downloadPolicy } from '../bot/download-policy.js';
import { downloadImage } from '../bot/download.js';
import { AppError } from '../errors.js';
import type { SlashCommand } from './command.js';
import { GUILD_ONLY } from './admin.js';

export const MAX_RESULTS = 20;

/** The command's `image` option, downloaded from the CDN; an attachment that says it is no image is refused. */
export async function imageOption(ctx: BotContext, interaction: ChatInputCommandInteraction): Promise<Buffer> {
  const attachment = interaction.options.getAttachment('image', true);
  if (attachment.contentType && !attachment.contentType.startsWith('image/')) {
    throw new AppError('IMAGE_UNSUPPORTED', 'That attachment is not an image.');
  }
  return downloadImage(attachment.url, downloadPolicy(ctx.config));
}

export const relevant: SlashCommand = {
  data: {
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
  },
  async execute(ctx, interaction) {
    checkQueryRate(ctx, interaction.user.id);
    const ephemeral = interaction.options.getBoolean('private') ?? false;
    await interaction.deferReply(ephemeral ? { flags: MessageFlags.Ephemeral } : {});
    const bytes = await imageOption(ctx, interaction);
    await answerRelevant(ctx, interaction, bytes, {
      k: interaction.options.getInteger('k') ?? MAX_RESULTS,
      sameChannelOnly: interaction.options.getString('scope') === 'channel',
      ephemeral,
    });
  },
};
