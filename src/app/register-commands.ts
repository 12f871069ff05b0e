import { REST, Routes } from 'discord.js';
import { commandDefinitions } from '../commands/definitions.js';

/** Bulk-overwrites the bot's commands globally (`scope` 'global') or in one guild (`scope` = its id). */
export async function registerCommands(rest: REST, applicationId: string, scope: string): Promise<number> {
  const route = scope === 'global' ? Routes.applicationCommands(applicationId) : Routes.applicationGuildCommands(applicationId, scope);
  const registered = (await rest.put(route, { body: commandDefinitions })) as unknown[];
  return registered.length;
}
