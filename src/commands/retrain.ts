import { ApplicationCommandOptionType, ApplicationCommandType, MessageFlags, type Message } from 'discord.js';
import type { BotContext } from '../bot/context.js';
import { AppError, isAppError } from '../errors.js';
import type { RetrainProgress, RetrainSummary } from '../index/engine.js';
import type { SlashCommand } from './command.js';
import { MANAGE_GUILD, requireManageGuild } from './admin.js';

const EDIT_EVERY_MS = 3_000;

export const retrain: SlashCommand = {
  data: {
    name: 'retrain',
    description: "Retrain this server's relevance model on its own images",
    type: ApplicationCommandType.ChatInput,
    dm_permission: false,
    default_member_permissions: MANAGE_GUILD,
    options: [
      { name: 'force', description: 'Use the new model even if the quality check prefers the current one', type: ApplicationCommandOptionType.Boolean },
      { name: 'auto', description: 'Switch automatic retraining on or off instead of retraining now', type: ApplicationCommandOptionType.Boolean },
    ],
  },
  async execute(ctx, interaction) {
    requireManageGuild(interaction);
    const guildId = interaction.guildId!;
    const auto = interaction.options.getBoolean('auto');
    if (auto !== null) {
      await ctx.settings.setAutoRetrain(guildId, auto);
      await interaction.reply({ content: `Automatic retraining is now ${auto ? 'on' : 'off'}.`, flags: MessageFlags.Ephemeral });
      return;
    }
    const before = await ctx.engine.stats(guildId);
    // The interaction token expires after 15 minutes; a long retrain reports in a channel message instead.
    await interaction.reply({ content: `Retraining on ${before.images} images. Searches keep working with the current model meanwhile.` });
    const progress = await interaction.fetchReply();
    await runRetrain(ctx, guildId, progress, interaction.options.getBoolean('force') ?? false);
  },
};

async function runRetrain(ctx: BotContext, guildId: string, progress: Message, force: boolean): Promise<void> {
  let lastEdit = 0;
  const report = (p: RetrainProgress) => {
    const now = Date.now();
    if (p.phase === 'training' && now - lastEdit < EDIT_EVERY_MS) return;
    lastEdit = now;
    progress.edit({ content: describeProgress(p) }).catch((error: Error) => ctx.log.warn(`retrain progress edit failed: ${error.message}`));
  };
  try {
    const summary = await ctx.engine.retrain({ namespace: guildId, onProgress: report, force });
    await progress.edit({ content: describeSummary(summary) });
  } catch (error) {
    const reason = isAppError(error) ? error.message : 'an internal error (see the log)';
    if (!isAppError(error)) ctx.log.error(`retrain of ${guildId} failed: ${(error as Error).stack ?? error}`);
    await progress.edit({ content: `Retrain stopped: ${reason} The current model stays active.` });
    if (isAppError(error, 'BUSY')) return;
    if (!isAppError(error)) throw new AppError('TRAINING_FAILED', 'The retrain failed.', { cause: error });
  }
}

function describeProgress(p: RetrainProgress): string {
  if (p.phase === 'training' && p.epoch !== undefined && p.epochs !== undefined) {
    const eta = p.secondsPerEpoch ? `, about ${Math.ceil(((p.epochs - p.epoch) * p.secondsPerEpoch) / 60)} min left` : '';
    return `Retraining: epoch ${p.epoch}/${p.epochs}, loss ${p.loss?.toFixed(3)}${eta}.`;
  }
  const phases: Record<RetrainProgress['phase'], string> = {
    loading: 'Retraining: reading stored features…',
    training: 'Retraining…',
    checking: 'Retraining: comparing the new model with the current one…',
    encoding: 'Retraining: building the new index…',
    swapping: 'Retraining: switching to the new model…',
  };
  return phases[p.phase];
}

export function describeSummary(summary: RetrainSummary): string {
  const before = summary.previousKey === 'raw' ? 'raw image features' : `model ${summary.previousKey}`;
  const check = `Quality check: ${summary.gate.reason}`;
  if (!summary.swapped) {
    return [
      `Trained a new model on ${summary.trainedOn} images in ${Math.round(summary.seconds)} s, but kept ${before}.`,
      check,
      'Use `/retrain force:true` to switch anyway.',
    ].join('\n');
  }
  return [
    `Retrained on ${summary.trainedOn} images in ${Math.round(summary.seconds)} s.`,
    `Before: ${before}. After: model ${summary.key} (${summary.activeUnits}/${summary.latentDim} active dimensions, loss ${summary.loss.toFixed(3)}).`,
    summary.forced ? `${check} (switched anyway, as asked)` : check,
  ].join('\n');
}
