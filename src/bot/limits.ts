/**
 * Limits the command definitions show Discord (src/commands/definitions.ts) and the library enforces. A module of
 * its own, importing nothing, so that registering the commands (`npm run register`) loads no handler code.
 */

/** The most results one search answers with (and pages through). */
export const MAX_RESULTS = 20;
