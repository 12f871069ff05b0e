import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { ApplicationCommandOptionType } from 'discord.js';
import { startFakeDiscord, type FakeDiscord } from '../harness/fake-discord/index.js';
import { addArtClub, askRelevant } from './helpers/bot-world.js';
import { nearDuplicate, referencePhotoPaths } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

/** Shaped like a real bot token: base64 of a user id, a timestamp part, an HMAC part; random, so no line holds it by chance. */
function botToken(): string {
  const userId = String(BigInt(`0x${randomBytes(7).toString('hex')}`) + 10n ** 17n);
  return [Buffer.from(userId).toString('base64').replace(/=+$/, ''), randomBytes(6).toString('base64url').slice(0, 6), randomBytes(28).toString('base64url')].join('.');
}

/** The token and each of its parts: any of them in a log line gives the token away, or most of it. */
const secretsOf = (token: string) => [token, ...token.split('.')];

interface BotProcess {
  dataDir: string;
  output(): string;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

/** `node dist/src/main.js`, the real entry point, configured only through its environment as an operator would. */
async function startBot(fake: FakeDiscord, token: string): Promise<BotProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'relevant-secrets-'));
  const child = spawn(process.execPath, [MAIN], {
    // Its own working directory, so no .env of the checkout is read.
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      DISCORD_TOKEN: token,
      DISCORD_API_URL: fake.apiUrl,
      CDN_HOSTS: new URL(fake.cdnUrl).host,
      ALLOW_INSECURE_CDN: 'true',
      DATA_DIR: dir,
      LOG_LEVEL: 'debug',
      AUTO_RETRAIN: 'false',
      QUERIES_PER_MINUTE: '1000',
      // Opt-in since `npm run register` became the set-up step; the test waits for it as its sign of a started bot.
      REGISTER_COMMANDS: 'global',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    dataDir: dir,
    output: () => output,
    exited,
    stop: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

describe('no token ever reaches a log line or a message', () => {
  const fakes: FakeDiscord[] = [];
  const bots: BotProcess[] = [];
  after(async () => {
    await Promise.all(bots.map((bot) => bot.stop()));
    for (const fake of fakes) await fake.close();
    for (const bot of bots) await rm(bot.dataDir, { recursive: true, force: true });
  });

  test('the real entry point, through failures of every kind, never prints the bot token or an interaction token', async () => {
    const photos = Object.fromEntries((await referencePhotoPaths()).map((p) => [basename(p), p]));
    const token = botToken();
    const discord = await startFakeDiscord({ token });
    fakes.push(discord);
    const ids = addArtClub(discord);
    const bot = await startBot(discord, token);
    bots.push(bot);
    await discord.waitForRequest((r) => r.method === 'PUT' && r.route === '/applications/:applicationId/commands' && r.status === 200, 90_000);

    const command = (name: string, userId: string, options: Parameters<FakeDiscord['slashCommand']>[0]['options'] = []) =>
      discord.slashCommand({ guildId: ids.guild, channelId: ids.art, userId, name, options });
    const text = (id: string) => JSON.stringify([discord.reply(id).original, discord.reply(id).record.callbacks.map((c) => c.body)]);
    const ask = (image: Buffer, extra: Parameters<typeof askRelevant>[1]['extra'] = [], contentType?: string) =>
      askRelevant(discord, { guildId: ids.guild, channelId: ids.art, userId: ids.painter, image, extra, contentType });
    const answered = (id: string, pattern: RegExp) => discord.waitForReply(id, { until: () => pattern.test(text(id)), timeoutMs: 30_000 });

    for (const channelId of [ids.art, ids.staff]) {
      await discord.waitForReply(command('watch', ids.owner, [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: channelId }]));
    }
    for (const name of ['chelsea.png', 'owl.jpg', 'coffee.png']) {
      discord.postMessage({ channelId: ids.art, authorId: ids.painter, files: [{ filename: name, data: await readFile(photos[name]) }] });
    }
    discord.postMessage({ channelId: ids.staff, authorId: ids.staffer, files: [{ filename: 'dragonfly.png', data: await readFile(photos['dragonfly.png']) }] });
    await waitFor(
      'four images indexed',
      async () => {
        const status = await discord.waitForReply(command('relevance-status', ids.painter));
        return /Images indexed: 4/.test(text(status.record.id));
      },
      60_000,
    );

    const query = await nearDuplicate(photos['chelsea.png']);
    await answered(ask(query), /most relevant images/);

    // REST faults on the answer's edit: 401 and 403 fail it at once, a 429 is waited out, 500s until retries run out.
    const original = /\/webhooks\/\d+\/[^/]+\/messages\/(@|%40)original$/;
    for (const status of [401, 403]) {
      discord.faults.rest.serverError({ method: 'PATCH', path: original }, { status, times: 1 });
      await answered(ask(query), /Something went wrong/);
    }
    discord.faults.rest.rateLimit({ method: 'PATCH', path: original }, { retryAfter: 0.2 });
    await answered(ask(query), /most relevant images/);
    discord.faults.rest.serverError({ method: 'PATCH', path: original }, { status: 500, times: 4 });
    await answered(ask(query), /Something went wrong/);

    discord.faults.cdn.failNext(4, 503);
    await answered(ask(query), /could not be downloaded/);
    await answered(ask(Buffer.from('<html>not an image</html>')), /not an image/);
    await answered(ask(query, [], 'text/plain'), /not an image/);
    await answered(command('retrain', ids.painter), /Manage Server/);
    command('no-such-command', ids.painter);

    // An answer that comes after its token expired goes to the channel; a private one is logged as lost.
    for (const extra of [[], [{ name: 'private', type: ApplicationCommandOptionType.Boolean, value: true }]]) {
      const hold = discord.faults.cdn.holdNext(1);
      const id = ask(query, extra);
      await hold.reached;
      discord.expireInteractionToken(id);
      hold.release();
      await waitFor('the late answer or its reason', () => bot.output().includes(`interaction ${id} of user`), 30_000);
    }

    // Last, as a 401 on a request made with the bot token makes discord.js drop its token for good.
    discord.faults.rest.serverError({ method: 'POST', route: '/channels/:channelId/messages' }, { status: 401, times: 1 });
    const target = [...discord.state.messages.values()].find((m) => m.channelId === ids.art && m.attachments.length > 0)!;
    const mention = discord.postMessage({ channelId: ids.art, authorId: ids.painter, content: `<@${discord.botUserId}>`, mentionIds: [discord.botUserId], replyTo: target.id });
    await waitFor('the failed mention logged', () => bot.output().includes(`mention ${mention.id} failed`), 30_000);

    assert.equal(await bot.stop(), 0);
    const output = bot.output();
    for (const expected of ['logged in as', 'DiscordAPIError', 'HTTPError', 'token expired', 'private answer is lost', 'IMAGE_']) {
      assert.ok(output.includes(expected), `the log shows the flow that logs "${expected}"`);
    }

    const interactionTokens = [...discord.interactions.values()].map((record) => record.token);
    assert.ok(interactionTokens.length >= 15);
    const secrets = [...secretsOf(token), ...interactionTokens];
    const leaked = secrets.filter((secret) => output.includes(secret));
    assert.deepEqual(leaked, [], 'no token in stdout or stderr');

    // What members see: every message and interaction response, and everything the bot sent to Discord.
    const shown = JSON.stringify([
      [...discord.state.messages.values()].map((m) => discord.serialize(m)),
      discord.requests.map((r) => r.body),
    ]);
    assert.deepEqual(secrets.filter((secret) => shown.includes(secret)), [], 'no token in what the bot sent');
  });

  test('a wrong token fails the start-up without printing it', async () => {
    const fake = await startFakeDiscord({ token: botToken() });
    fakes.push(fake);
    const wrong = botToken();
    const bot = await startBot(fake, wrong);
    bots.push(bot);
    const code = await bot.exited;
    assert.notEqual(code, 0);
    assert.match(bot.output(), /invalid token/i);
    assert.deepEqual(secretsOf(wrong).filter((secret) => bot.output().includes(secret)), []);
  });
});
