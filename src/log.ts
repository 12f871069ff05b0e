export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The logging surface the engine needs; the bot passes a pino logger, the CLI a plain one on stderr. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function createStderrLogger(level: LogLevel, write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const at = (name: Exclude<LogLevel, 'silent'>) => (message: string) => {
    if (LOG_LEVELS.indexOf(name) >= threshold) write(`[${name}] ${message}\n`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export const silentLogger: Logger = createStderrLogger('silent');

/**
 * Interaction webhook and callback URLs carry the interaction's token (it lets anyone answer as the bot for 15
 * minutes), and discord.js REST errors carry their request URL.
 */
const INTERACTION_TOKEN_IN_PATH = /\/(webhooks|interactions)\/(\d+)\/[\w-]{20,}/g;

/** The text with interaction tokens in URLs and every given secret (and each dot-separated part of it) blanked. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  const parts = secrets.flatMap((secret) => [secret, ...secret.split('.')]).filter((part) => part.length >= 6);
  // Whole secrets before their parts, so a token is blanked as one.
  parts.sort((a, b) => b.length - a.length);
  let clean = text.replace(INTERACTION_TOKEN_IN_PATH, '/$1/$2/[redacted]');
  for (const part of parts) clean = clean.split(part).join('[redacted]');
  return clean;
}

/** A logger that can never write the secrets, whatever a message (an error's URL, a config dump) holds. */
export function redactingLogger(inner: Logger, secrets: readonly string[]): Logger {
  const clean = (message: string) => redactSecrets(message, secrets);
  return {
    debug: (message) => inner.debug(clean(message)),
    info: (message) => inner.info(clean(message)),
    warn: (message) => inner.warn(clean(message)),
    error: (message) => inner.error(clean(message)),
  };
}
