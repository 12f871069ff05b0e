import { MessageFlags } from 'discord.js';
import { readableBy } from '../bot/access.js';
import type { SlashCommand } from './command.js';
import { cannotAnswerFullyText, cannotWatchText, missingBotPermissions } from '../bot/bot-permissions.js';
import { requireManageGuild } from './admin.js';
import { unwatchDefinition, watchDefinition, watchingDefinition } from './definitions.js';

export const watch: SlashCommand = {
  data: watchDefinition,
  async execute(ctx, interaction) {
    requireManageGuild(interaction);
    const guildId = interaction.guildId!;
    const { id: channelId } = interaction.options.getChannel('channel', true);
    const channel = interaction.guild?.channels.cache.get(channelId) ?? (await interaction.guild?.channels.fetch(channelId).catch(() => null));
    // A channel the bot cannot even see is not in its cache and cannot be fetched: it lacks View Channel.
    const missing = channel ? await missingBotPermissions(channel) : { read: ['View Channel', 'Read Message History'], answer: [] };
    if (missing.read.length > 0) {
      await interaction.reply({ content: cannotWatchText(channelId, missing), flags: MessageFlags.Ephemeral });
      return;
    }
    const reposts = interaction.options.getString('reposts');
    const added = await ctx.settings.watch(guildId, channelId);
    if (reposts !== null) await ctx.settings.setRepostNotices(channelId, reposts === 'notify');
    const notices = reposts === null ? '' : ` ${repostNoticesText(reposts === 'notify')}`;
    const stopped = added ? undefined : (await ctx.settings.backfill(channelId))?.problem;
    if (!added && !stopped) {
      await interaction.reply({ content: `<#${channelId}> is already watched.${notices}`, flags: MessageFlags.Ephemeral });
      return;
    }
    await interaction.reply({
      content: added ? `Now indexing new images in <#${channelId}>.${notices} Reading its history:` : `Trying <#${channelId}> again.${notices} Reading the rest of its history:`,
    });
    const status = await interaction.fetchReply();
    ctx.startBackfill(guildId, channelId, { channelId: status.channelId, messageId: status.id, interaction });
    if (missing.answer.length > 0) await interaction.followUp({ content: cannotAnswerFullyText(channelId, missing.answer), flags: MessageFlags.Ephemeral });
  },
};

function repostNoticesText(on: boolean): string {
  return on ? 'Repost notices: on (I reply when an image posted there was posted before where everyone there can see it).' : 'Repost notices: off.';
}

export const unwatch: SlashCommand = {
  data: unwatchDefinition,
  async execute(ctx, interaction) {
    requireManageGuild(interaction);
    const channel = interaction.options.getChannel('channel', true);
    const removed = await ctx.settings.unwatch(interaction.guildId!, channel.id);
    await interaction.reply({
      content: removed ? `Stopped watching <#${channel.id}>.` : `<#${channel.id}> was not watched.`,
      flags: MessageFlags.Ephemeral,
    });
  },
};

export const watching: SlashCommand = {
  data: watchingDefinition,
  async execute(ctx, interaction) {
    const watched = await ctx.settings.watched(interaction.guildId!);
    // Only the channels the asker can read: the others' names are not theirs to see.
    const channels = await readableBy(interaction, watched);
    const problems = new Map((await ctx.settings.backfills(interaction.guildId!)).flatMap((b) => (b.problem ? [[b.channelId, b.problem] as const] : [])));
    // A channel whose history stopped for lack of access needs an admin: say so next to it.
    const notices = new Set((await Promise.all(channels.map(async (id) => ((await ctx.settings.repostNotices(id)) ? [id] : [])))).flat());
    const shown = channels.map((id) => {
      const notes = [...(notices.has(id) ? ['repost notices'] : []), ...(problems.has(id) ? [`needs attention: ${problems.get(id)}; fix it, then /watch it again`] : [])];
      return notes.length === 0 ? `<#${id}>` : `<#${id}> (${notes.join('; ')})`;
    });
    await interaction.reply({
      content: channels.length === 0 ? 'No channel you can read is watched yet (an admin can use /watch).' : `Watching: ${shown.join(', ')}`,
      flags: MessageFlags.Ephemeral,
    });
  },
};
