import { isAppError } from '../errors.js';

export const GENERIC_ERROR_TEXT = 'Something went wrong on my side; it has been logged.';

/**
 * The text an error shows a member. The engine names a collection by its namespace, which for a server is the
 * server's id: meaningless to people, so `"<id>"` becomes "this server". Any other text still holding the id (a
 * file path, say) is not shown at all. Errors that are not AppErrors are never shown as they are.
 */
export function errorTextFor(error: unknown, guildId: string | null): string {
  if (!isAppError(error)) return GENERIC_ERROR_TEXT;
  return withoutGuildId(error.message, guildId) ?? GENERIC_ERROR_TEXT;
}

/** `text` with the quoted guild id said as "this server"; undefined if the id still appears in it. */
export function withoutGuildId(text: string, guildId: string | null): string | undefined {
  if (!guildId) return text;
  const said = text.replaceAll(`"${guildId}"`, (_match, offset: number) => (/(^|[.!?]\s+)$/.test(text.slice(0, offset)) ? 'This server' : 'this server'));
  return said.includes(guildId) ? undefined : said;
}
