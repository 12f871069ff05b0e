import { MessageFlags } from 'discord.js';
import { readableBy } from '../bot/access.js';
import type { SlashCommand } from './command.js';
import { relevanceStatusDefinition } from './definitions.js';
import { TRIAL_ANSWERS } from '../index/engine.js';

export const relevanceStatus: SlashCommand = {
  data: relevanceStatusDefinition,
  async execute(ctx, interaction) {
    const guildId = interaction.guildId!;
    const stats = await ctx.engine.stats(guildId);
    // Only the channels the asker can read: the others' names and counts are not theirs to see.
    const readable = new Set(await readableBy(interaction, await ctx.settings.watched(guildId)));
    const backfills = (await ctx.settings.backfills(guildId)).filter((b) => readable.has(b.channelId));
    const lines = [
      `Images indexed: ${stats.images}`,
      `Ingest queue: ${ctx.ingest.length}`,
      `Model: ${stats.vae ? `${stats.key}, trained on ${stats.vae.trainingSize} images (${stats.vae.created.slice(0, 10)})` : 'raw image features (no server model trained yet)'}`,
      `Feature extractor: ${stats.featureModel}`,
      ...(stats.trial
        ? [`Style trial since ${stats.trial.started.slice(0, 10)}: judged answers favoured it ${stats.trial.candidateWins} times, the current key ${stats.trial.currentWins} (decided at ${TRIAL_ANSWERS})`]
        : []),
      `Automatic retraining: ${(await ctx.settings.autoRetrain(guildId)) ? 'on' : 'off'}${stats.retrainDue ? ' (due)' : ''}`,
      ...backfills.map((b) => `History of <#${b.channelId}>: ${b.done ? 'done' : 'in progress'}, ${b.messages} messages read, ${b.images} images indexed`),
    ];
    await interaction.reply({ content: lines.join('\n'), flags: MessageFlags.Ephemeral });
  },
};
