import { searchByImage } from '../bot/search.js';
import type { MessageMenuCommand } from './command.js';
import { findRelevantDefinition } from './definitions.js';

export const findRelevant: MessageMenuCommand = {
  data: findRelevantDefinition,
  async execute(ctx, interaction) {
    await searchByImage(ctx, { via: 'menu', interaction });
  },
};
