import { ApplicationCommandOptionType, ApplicationCommandType, MessageFlags } from 'discord.js';
import type { BotContext } from '../bot/context.js';
import { ProgressMessage } from '../bot/progress-message.js';
import { errorTextFor } from '../bot/user-text.js';
import { isAppError } from '../errors.js';
import type { RetrainProgress, RetrainSummary } from '../index/engine.js';
import type { SlashCommand } from './command.js';
import { GUILD_ONLY, MANAGE_GUILD, requireManageGuild } from './admin.js';

const EDIT_EVERY_MS = 3_000;

export const retrain: SlashCommand = {
  data: {
    name: 'retrain',
    description: "Retrain this server's relevance model on its own images",
    type: ApplicationCommandType.ChatInput,
    contexts: GUILD_ONLY,
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
    await interaction.reply({ content: `Retraining on ${before.images} images. Searches keep working with the current model meanwhile.` });
    const reply = await interaction.fetchReply();
    // Edited through the interaction while its token lives (15 minutes); a longer retrain reports in a new message.
    const progress = new ProgressMessage(
      { client: ctx.client, log: ctx.log, what: `retrain of guild ${guildId}` },
      { channelId: reply.channelId, messageId: reply.id, userId: interaction.user.id, ordinary: false },
      interaction,
    );
    await runRetrain(ctx, guildId, progress, interaction.options.getBoolean('force') ?? false);
  },
};

async function runRetrain(ctx: BotContext, guildId: string, progress: ProgressMessage, force: boolean): Promise<void> {
  let lastEdit = 0;
  const report = (p: RetrainProgress) => {
    const now = Date.now();
    if (p.phase === 'training' && now - lastEdit < EDIT_EVERY_MS) return;
    lastEdit = now;
    void progress.report(describeProgress(p));
  };
  try {
    const summary = await ctx.engine.retrain({ namespace: guildId, onProgress: report, force });
    await progress.report(describeSummary(summary));
  } catch (error) {
    if (!isAppError(error)) ctx.log.error(`retrain of ${guildId} failed: ${(error as Error).stack ?? error}`);
    const reason = isAppError(error) ? errorTextFor(error, guildId) : 'an internal error (see the log).';
    await progress.report(`Retrain stopped: ${reason} The current model stays active.`);
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
