// Registers the bot's slash and context-menu commands: `npm run register [-- <guild id>]` (global by default;
// a guild registration shows up at once, a global one can take a while to reach every client).
import { existsSync } from 'node:fs';
import { REST } from 'discord.js';
import { registerCommands } from '../src/bot/register-commands.js';
import { loadBotConfig } from '../src/config.js';

if (existsSync('.env')) process.loadEnvFile('.env');
const config = loadBotConfig();
const rest = new REST(config.apiUrl ? { api: config.apiUrl } : {}).setToken(config.token);
const application = (await rest.get('/applications/@me')) as { id: string };
const scope = process.argv[2] ?? (config.registerCommands === 'none' ? 'global' : config.registerCommands);
const count = await registerCommands(rest, application.id, scope);
console.log(`Registered ${count} commands (${scope === 'global' ? 'globally' : `in guild ${scope}`}).`);
