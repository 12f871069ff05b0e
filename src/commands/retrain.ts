import { MessageFlags } from 'discord.js';
import type { BotContext } from '../bot/context.js';
import { ProgressMessage } from '../bot/progress-message.js';
import { describeProgress, describeSummary } from '../bot/retrain-notices.js';
import { errorTextFor } from '../bot/user-text.js';
import { isAppError } from '../errors.js';
import type { RetrainProgress } from '../index/engine.js';
import type { SlashCommand } from './command.js';
import { requireManageGuild } from './admin.js';
import { retrainDefinition } from './definitions.js';

const EDIT_EVERY_MS = 3_000;

export const retrain: SlashCommand = {
  data: retrainDefinition,
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
