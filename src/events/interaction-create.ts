import { ApplicationCommandType, InteractionContextType, MessageFlags, type Interaction, type RepliableInteraction } from 'discord.js';
import { applyBrowse } from '../bot/browse.js';
import type { BotContext } from '../bot/context.js';
import { editReplyOrPost } from '../bot/late-answer.js';
import { applyJudgement } from '../bot/feedback.js';
import type { BrowseAction, Judge } from '../bot/results.js';
import { errorTextFor } from '../bot/user-text.js';
import { messageMenuCommands, slashCommands } from '../commands/index.js';
import type { MessageMenuCommand, SlashCommand } from '../commands/command.js';
import { isAppError } from '../errors.js';

/**
 * The one place interaction errors are caught: expected faults (AppError) are told to the user as they are;
 * anything else is logged and answered with a generic message. A failing reply can never crash the bot.
 */
export async function onInteractionCreate(ctx: BotContext, interaction: Interaction): Promise<void> {
  try {
    if (interaction.isChatInputCommand()) {
      const command = slashCommands.find((c) => c.data.name === interaction.commandName);
      if (command && (await offeredHere(command, interaction))) await command.execute(ctx, interaction);
    } else if (interaction.isMessageContextMenuCommand()) {
      const command = messageMenuCommands.find((c) => c.data.name === interaction.commandName);
      if (command && (await offeredHere(command, interaction))) await command.execute(ctx, interaction);
    } else if (interaction.isButton() && /^(browse|judge):/.test(interaction.customId) && interaction.guild) {
      const [kind, name] = interaction.customId.split(':');
      const outcome =
        kind === 'judge'
          ? await applyJudgement(ctx, interaction.guild, interaction.message.id, interaction.user.id, name as Judge)
          : await applyBrowse(ctx, interaction.guild, interaction.message.id, interaction.user.id, name as BrowseAction);
      if (outcome.kind === 'updated') await interaction.update({ ...outcome.payload, attachments: [] });
      else if (outcome.kind === 'closed') await interaction.update({ content: 'Closed.', embeds: [], files: [], components: [], attachments: [] });
      else await interaction.reply({ content: 'These results belong to someone else, or have expired.', flags: MessageFlags.Ephemeral });
    }
  } catch (error) {
    if (!isAppError(error)) ctx.log.error(`interaction ${interaction.id} failed: ${(error as Error).stack ?? error}`);
    else ctx.log.info(`interaction ${interaction.id}: ${error.code}: ${error.message}`);
    if (interaction.isRepliable()) await tellUser(ctx, interaction, errorTextFor(error, interaction.guildId));
  }
}

async function tellUser(ctx: BotContext, interaction: RepliableInteraction, content: string): Promise<void> {
  try {
    if (interaction.deferred || interaction.replied) await editReplyOrPost(ctx, interaction, { content, embeds: [], files: [], components: [] });
    else await interaction.reply({ content, flags: MessageFlags.Ephemeral });
  } catch (error) {
    ctx.log.warn(`interaction ${interaction.id}: could not tell the user what went wrong: ${(error as Error).message}`);
  }
}

/**
 * Server commands are registered with `contexts: [Guild]`, so Discord does not offer them elsewhere; one used
 * anyway (a stale registration, a DM) is answered with a sentence instead of failing on the missing server.
 */
async function offeredHere(command: SlashCommand | MessageMenuCommand, interaction: RepliableInteraction): Promise<boolean> {
  const contexts = command.data.contexts ?? [InteractionContextType.Guild];
  if (interaction.inGuild() || contexts.includes(InteractionContextType.BotDM)) return true;
  const name = command.data.type === ApplicationCommandType.Message ? `“${command.data.name}”` : `/${command.data.name}`;
  await interaction.reply({ content: `${name} works in a server, not in direct messages: use it in a channel of a server we share.`, flags: MessageFlags.Ephemeral });
  return false;
}
