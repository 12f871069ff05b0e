import { MAX_RESULTS } from '../bot/limits.js';
import { searchByImage } from '../bot/search.js';
import type { SlashCommand } from './command.js';
import { relevantDefinition } from './definitions.js';

export const relevant: SlashCommand = {
  data: relevantDefinition,
  async execute(ctx, interaction) {
    await searchByImage(ctx, {
      via: 'command',
      interaction,
      attachment: interaction.options.getAttachment('image', true),
      options: {
        k: interaction.options.getInteger('k') ?? MAX_RESULTS,
        sameChannelOnly: interaction.options.getString('scope') === 'channel',
        ephemeral: interaction.options.getBoolean('private') ?? false,
      },
    });
  },
};
