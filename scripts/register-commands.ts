// Registers the bot's slash and context-menu commands, the first-run step before `npm start` and again whenever
// the commands change: `npm run register [-- <guild id>]`. It loads the command definitions only, no handler.
import { existsSync } from 'node:fs';
import { inspect } from 'node:util';
import { REST } from 'discord.js';
import { registerCommands } from '../src/app/register-commands.js';
import { loadBotConfig } from '../src/config.js';
import { isAppError } from '../src/errors.js';
import { redactSecrets } from '../src/log.js';
import { parseScriptArgs } from './script-args.js';

const USAGE = `Usage: npm run register [-- <guild id>]

Registers the bot's commands with Discord (DISCORD_TOKEN from the environment or .env). Without a guild id they
are registered globally, which can take a while to reach every client; with one, in that server only, at once.
REGISTER_COMMANDS (a guild id or 'global') is the default scope when no guild id is given.`;

const { positionals } = parseScriptArgs({ allowPositionals: true, options: { help: { type: 'boolean', short: 'h', default: false } } }, USAGE);
if (positionals.length > 1) {
  console.error(USAGE);
  process.exit(2);
}
let token = '';
try {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const config = loadBotConfig();
  token = config.token;
  const rest = new REST(config.apiUrl ? { api: config.apiUrl } : {}).setToken(config.token);
  const application = (await rest.get('/applications/@me')) as { id: string };
  const scope = positionals[0] ?? (config.registerCommands === 'none' ? 'global' : config.registerCommands);
  const count = await registerCommands(rest, application.id, scope);
  console.log(`Registered ${count} commands (${scope === 'global' ? 'globally' : `in guild ${scope}`}).`);
} catch (error) {
  // As `npm start` does: a configuration fault is one line (exit 78); anything else is shown whole, token blanked.
  console.error(isAppError(error) ? error.message : redactSecrets(inspect(error), [token]));
  process.exit(isAppError(error, 'CONFIG_INVALID') ? 78 : 1);
}
