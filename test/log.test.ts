import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { DiscordAPIError } from 'discord.js';
import { createStderrLogger, redactingLogger, redactSecrets } from '../src/log.js';

const BOT_TOKEN = `MTE5Mzg3NTU4MTExMTcyNTU5.${randomBytes(6).toString('base64url').slice(0, 6)}.${randomBytes(28).toString('base64url')}`;
const INTERACTION_TOKEN = `aW50ZXJhY3Rpb246${randomBytes(48).toString('base64url')}`;

test('interaction tokens in webhook and callback URLs are blanked, the rest of the URL kept', () => {
  const webhook = `PATCH https://discord.com/api/v10/webhooks/1193875581111725559/${INTERACTION_TOKEN}/messages/@original failed`;
  assert.equal(redactSecrets(webhook, []), 'PATCH https://discord.com/api/v10/webhooks/1193875581111725559/[redacted]/messages/@original failed');
  const callback = `/api/v10/interactions/1576361237871067249/${INTERACTION_TOKEN}/callback?with_response=true`;
  assert.equal(redactSecrets(callback, []), '/api/v10/interactions/1576361237871067249/[redacted]/callback?with_response=true');
  const harmless = 'GET /channels/1576361208494161928/messages/1576361237871067249 and /webhooks/123/short';
  assert.equal(redactSecrets(harmless, []), harmless);
});

test('the bot token is blanked whole and by its parts', () => {
  const [id, stamp, hmac] = BOT_TOKEN.split('.');
  const text = `token=${BOT_TOKEN}; id part ${id}; stamp ${stamp}; secret ${hmac}`;
  const clean = redactSecrets(text, [BOT_TOKEN]);
  assert.equal(clean, 'token=[redacted]; id part [redacted]; stamp [redacted]; secret [redacted]');
});

test('an inspected discord.js REST error on an interaction webhook keeps its message and loses the token', () => {
  const url = `https://discord.com/api/v10/webhooks/1193875581111725559/${INTERACTION_TOKEN}/messages/@original`;
  const error = new DiscordAPIError({ message: 'Invalid Webhook Token', code: 50027 }, 50027, 401, 'PATCH', url, { body: { content: 'late' } });
  assert.ok(inspect(error).includes(INTERACTION_TOKEN), 'the error does carry the token');
  const clean = redactSecrets(inspect(error), [BOT_TOKEN]);
  assert.ok(!clean.includes(INTERACTION_TOKEN));
  assert.match(clean, /Invalid Webhook Token/);
});

test('a redacting logger writes every level without the secrets', () => {
  const lines: string[] = [];
  const log = redactingLogger(createStderrLogger('debug', (line) => lines.push(line)), [BOT_TOKEN]);
  log.debug(`config ${JSON.stringify({ token: BOT_TOKEN })}`);
  log.info(`edit of /webhooks/1/${INTERACTION_TOKEN}/messages/@original`);
  log.warn(`token ${BOT_TOKEN}`);
  log.error(`${BOT_TOKEN.split('.')[2]}`);
  assert.equal(lines.length, 4);
  for (const line of lines) assert.ok(!line.includes(BOT_TOKEN.split('.')[2]) && !line.includes(INTERACTION_TOKEN), line);
  assert.equal(lines[1], '[info] edit of /webhooks/1/[redacted]/messages/@original\n');
});
