import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ApplicationCommandOptionType, InteractionContextType } from 'discord.js';
import type { APIMessage } from 'discord-api-types/v10';
import { errorTextFor } from '../src/bot/user-text.js';
import { AppError } from '../src/errors.js';
import { addArtClub, startBotWorld, type ArtClub, type BotWorld } from './helpers/bot-world.js';
import { nearDuplicate, referencePhotoPaths } from './helpers/fixtures.js';
import { waitFor } from './helpers/wait.js';

const WEBHOOK_EDIT = '/webhooks/:applicationId/:token/messages/:messageId';
const CHANNEL_EDIT = '/channels/:channelId/messages/:messageId';
const REGISTER_SCRIPT = fileURLToPath(new URL('../scripts/register-commands.js', import.meta.url));
const run = promisify(execFile);

/**
 * What the bot says and how it changes what it said: no server id in any text meant for people, interaction replies
 * edited only through the interaction webhook (the fake refuses the channel route for them, as Discord documents it
 * unsupported), a new message once the token has expired, and commands that say they work in a server when used in
 * a DM.
 */
describe('the bot’s messages', () => {
  let world: BotWorld;
  let ids: ArtClub;
  let photos: Record<string, string>;
  const problems = (mark: number) => world.logs.slice(mark).filter((line) => /^(warn|error) /.test(line));
  /** Every text the bot put in front of people: message contents and embeds it sent or edited. */
  const sentTexts = () => world.fake.requests.filter((r) => r.method !== 'GET' && r.status < 400).map((r) => JSON.stringify(r.body ?? ''));

  before(async () => {
    photos = Object.fromEntries((await referencePhotoPaths()).map((p) => [basename(p), p]));
    // Registering at start-up is opt-in (`npm run register` is the set-up step); the registration test below needs it.
    world = await startBotWorld({ env: { REGISTER_COMMANDS: 'global' } });
    ids = addArtClub(world.fake);
    await world.fake.waitForReply(
      world.fake.slashCommand({ guildId: ids.guild, channelId: ids.art, userId: ids.owner, name: 'watch', options: [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: ids.art }] }),
      { until: (r) => /Done\.$/.test(r.original?.content ?? '') },
    );
    for (const name of ['chelsea.png', 'owl.jpg', 'coffee.png']) {
      world.fake.postMessage({ channelId: ids.art, authorId: ids.painter, files: [{ filename: name, data: await readFile(photos[name]) }] });
    }
    await waitFor('three images indexed', async () => (await world.engine.stats(ids.guild)).images === 3);
  });
  after(() => world?.stop());

  test('a retrain refused for too few images says "this server", never the server id, through the interaction webhook', async () => {
    const mark = world.logs.length;
    const id = world.fake.slashCommand({ guildId: ids.guild, channelId: ids.art, userId: ids.owner, name: 'retrain' });
    const reply = await world.fake.waitForReply(id, { until: (r) => /^Retrain stopped/.test(r.original?.content ?? '') });
    assert.match(reply.original!.content, /^Retrain stopped: This server has 3 images; a retrain needs at least \d+\. The current model stays active\.$/);
    const edits = reply.requests.filter((r) => r.method === 'PATCH');
    assert.ok(edits.length > 0 && edits.every((r) => r.route === WEBHOOK_EDIT && r.status === 200));
    assert.ok(!sentTexts().some((text) => text.replace(/https:\/\/discord\.com\/channels\/[0-9/]+/g, '').includes(ids.guild)), 'no server id outside jump links');
    assert.deepEqual(world.fake.channelEditsOfInteractionResponses, []);
    assert.deepEqual(problems(mark), []);
  });

  test('error texts: a quoted server id becomes "this server"; any other text holding it is not shown', () => {
    const guild = '1577000000000000001';
    assert.equal(errorTextFor(new AppError('BUSY', `A retrain of "${guild}" is already running; wait for it to finish.`), guild), 'A retrain of this server is already running; wait for it to finish.');
    assert.equal(errorTextFor(new AppError('INDEX_CORRUPT', `The index file /data/${guild}/index.bin is missing.`), guild), 'Something went wrong on my side; it has been logged.');
    assert.equal(errorTextFor(new Error(`plain ${guild}`), guild), 'Something went wrong on my side; it has been logged.');
    assert.equal(errorTextFor(new AppError('IMAGE_CORRUPT', 'That image is damaged.'), guild), 'That image is damaged.');
  });

  test('page turns on a public answer go through the interaction webhook while its token lives', async () => {
    const mark = world.logs.length;
    const id = world.relevant(ids.guild, ids.art, ids.painter, await nearDuplicate(photos['chelsea.png']));
    const answer = (await world.fake.waitForReply(id)).original!;
    await waitFor('the four controls', () => (world.fake.state.messages.get(answer.id)?.reactions.size ?? 0) >= 4);
    world.fake.addReaction(ids.art, answer.id, ids.painter, '➡️');
    await waitFor('the page turn', () => /^Result 2 of/.test(world.fake.serialize(world.fake.state.messages.get(answer.id)!).embeds?.[0]?.title ?? ''));
    const edits = world.fake.requests.filter((r) => r.method === 'PATCH' && r.params.messageId === answer.id);
    assert.equal(edits.length, 1, 'the page turn (the answer itself edited @original)');
    assert.ok(edits.every((r) => r.route === WEBHOOK_EDIT && r.status === 200));
    world.fake.addReaction(ids.art, answer.id, ids.painter, '❌');
    await waitFor('the answer closed', () => !world.fake.state.messages.has(answer.id));
    assert.ok(world.fake.requests.some((r) => r.method === 'DELETE' && r.route === WEBHOOK_EDIT && r.params.messageId === answer.id && r.status === 204));
    assert.deepEqual(world.fake.channelEditsOfInteractionResponses, []);
    assert.deepEqual(problems(mark), []);
  });

  test('a /watch status whose token expires continues in a new message addressed to the admin, edited in place', async () => {
    const mark = world.logs.length;
    const { fake } = world;
    const gallery = fake.addChannel(ids.guild, { name: 'gallery' }).id;
    const start = Date.now() - 150 * 60_000;
    for (let i = 0; i < 150; i++) {
      const name = i === 0 ? 'owl.jpg' : i === 120 ? 'coffee.png' : undefined;
      fake.postMessage({ channelId: gallery, authorId: ids.painter, content: `m${i}`, files: name ? [{ filename: name, data: await readFile(photos[name]) }] : [], timestamp: new Date(start + i * 60_000), dispatch: false });
    }
    const before = new Set(fake.state.messages.keys());
    const hold = fake.faults.cdn.holdNext(1);
    const id = fake.slashCommand({ guildId: ids.guild, channelId: ids.art, userId: ids.owner, name: 'watch', options: [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: gallery }] });
    await hold.reached;
    fake.expireInteractionToken(id);
    hold.release();
    await waitFor('the backfill', async () => (await world.settings.backfill(gallery))?.done === true);
    await world.bot.idle();
    const posted: APIMessage[] = [...fake.state.messages.values()]
      .filter((m) => !before.has(m.id) && m.channelId === ids.art && m.authorId === fake.botUserId && m.interactionId === null)
      .map((m) => fake.serialize(m));
    assert.equal(posted.length, 1);
    assert.match(posted[0].content, new RegExp(`^<@${ids.owner}> History of <#${gallery}>: 150 messages read, 2 images indexed\\. Done\\.$`));
    const sent = fake.requests.find((r) => r.method === 'POST' && (r.response as APIMessage | undefined)?.id === posted[0].id);
    assert.deepEqual((sent?.body as { allowed_mentions?: unknown }).allowed_mentions, { users: [ids.owner] });
    assert.ok(fake.requests.some((r) => r.method === 'PATCH' && r.route === CHANNEL_EDIT && r.params.messageId === posted[0].id && r.status === 200), 'the final report edits the new message');
    assert.deepEqual(fake.channelEditsOfInteractionResponses, []);
    assert.equal((await world.settings.backfill(gallery))?.statusMessageId, posted[0].id, 'a restart would edit the new message');
    assert.deepEqual(problems(mark), []);
  });

  test('every command is registered with contexts instead of dm_permission; only /forget-me and /index-me are offered in DMs', () => {
    const registered = world.fake.commands.global;
    assert.ok(registered.length >= 9);
    for (const command of registered) {
      assert.equal((command as { dm_permission?: unknown }).dm_permission, undefined, command.name);
      const expected = ['forget-me', 'index-me'].includes(command.name) ? [InteractionContextType.Guild, InteractionContextType.BotDM] : [InteractionContextType.Guild];
      assert.deepEqual(command.contexts, expected, command.name);
    }
  });

  test('`npm run register <guild id>` registers the same commands in that server, loading their definitions but no handler', async () => {
    // A resolve hook in the script's process reports every module it loads.
    const hook = 'export async function resolve(s, c, next) { const r = await next(s, c); if (r.url.startsWith("file:")) process.stderr.write(`loaded ${r.url}\\n`); return r; }';
    const dataUrl = (code: string) => `data:text/javascript,${encodeURIComponent(code)}`;
    const importHook = dataUrl(`import { register } from 'node:module'; register(${JSON.stringify(dataUrl(hook))});`);
    const { stdout, stderr } = await run(process.execPath, ['--import', importHook, REGISTER_SCRIPT, ids.guild], {
      cwd: world.dataDir,
      env: { PATH: process.env.PATH, HOME: world.dataDir, DISCORD_TOKEN: world.fake.token, DISCORD_API_URL: world.fake.apiUrl },
    });
    const names = (commands: Array<{ name: string }>) => commands.map((c) => c.name);
    assert.deepEqual(names(world.fake.commands.guild.get(ids.guild) ?? []), names(world.fake.commands.global));
    assert.equal(stdout.trim(), `Registered ${world.fake.commands.global.length} commands (in guild ${ids.guild}).`);
    const ours = [...stderr.matchAll(/^loaded file:\/\/.*?\/dist\/(src\/.*)$/gm)].map((m) => m[1]);
    assert.ok(ours.includes('src/commands/definitions.js'), stderr);
    assert.deepEqual(ours.filter((path) => /^src\/(bot|commands|events|index|ml)\//.test(path) && !['src/commands/definitions.js', 'src/bot/limits.js'].includes(path)), []);
  });

  test('a server command used in a DM answers that it works in a server; /forget-me works there', async () => {
    const mark = world.logs.length;
    for (const name of ['relevant', 'watching', 'retrain', 'relevance-status']) {
      const reply = await world.fake.waitForReply(world.fake.dmCommand({ userId: ids.painter, name }));
      assert.equal(reply.original?.content, `/${name} works in a server, not in direct messages: use it in a channel of a server we share.`);
      assert.ok(((reply.original?.flags ?? 0) & 64) !== 0);
    }
    const forget = await world.fake.waitForReply(world.fake.dmCommand({ userId: ids.staffer, name: 'forget-me' }));
    assert.match(forget.original?.content ?? '', /^Removed 0 images you posted/);
    assert.deepEqual(problems(mark), []);
  });
});
