import { PermissionFlagsBits, type ChatInputCommandInteraction } from 'discord.js';
import { AppError } from '../errors.js';

/** Manage Server, checked in code as well: default member permissions can be changed by any admin. */
export function requireManageGuild(interaction: ChatInputCommandInteraction): void {
  if (!interaction.inGuild() || !interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild)) {
    throw new AppError('NOT_PERMITTED', 'Only members with the Manage Server permission can do that.');
  }
}
