import { InteractionContextType, PermissionFlagsBits, type ChatInputCommandInteraction } from 'discord.js';
import { AppError } from '../errors.js';

/** Manage Server, checked in code as well: default member permissions can be changed by any admin. */
export function requireManageGuild(interaction: ChatInputCommandInteraction): void {
  if (!interaction.inGuild() || !interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild)) {
    throw new AppError('NOT_PERMITTED', 'Only members with the Manage Server permission can do that.');
  }
}

export const MANAGE_GUILD = String(PermissionFlagsBits.ManageGuild);

/**
 * The `contexts` of every command that works on a server's images: offered in servers only (replacing the deprecated
 * `dm_permission: false`). A use from elsewhere is answered by the interaction handler with a sentence.
 */
export const GUILD_ONLY = [InteractionContextType.Guild];
