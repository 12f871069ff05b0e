import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationCommandOptionType, OverwriteType, PermissionFlagsBits } from 'discord.js';
import type { Bot } from '../../src/app/create-bot.js';
import type { BotSettings } from '../../src/bot/settings.js';
import { wireBot } from '../../src/app/wire.js';
import { loadBotConfig } from '../../src/config.js';
import type { Engine, EngineOptions } from '../../src/index/engine.js';
import type { Logger } from '../../src/log.js';
import { fakeBotEnv } from '../../harness/fake-discord/client.js';
import { startFakeDiscord, type CommandOptionInput, type FakeDiscord } from '../../harness/fake-discord/index.js';

export interface BotWorld {
  fake: FakeDiscord;
  bot: Bot;
  engine: Engine;
  settings: BotSettings;
  dataDir: string;
  logs: string[];
  /** Runs /relevant with an uploaded image as `userId` in `channelId`; returns the interaction id. */
  relevant(guildId: string, channelId: string, userId: string, image: Buffer, extra?: Array<{ name: string; type: ApplicationCommandOptionType; value: string | number | boolean }>): string;
  stop(): Promise<void>;
}

/**
 * Call `stop()` in the suite's own `after` hook (an `after` registered from inside a `before` hook runs as soon as
 * that hook ends).
 *
 * The real bot (real engine, real model, real SQLite) logged in to the local fake Discord. Only the fake's CDN
 * host is allowed for downloads, as Discord's CDN is in production.
 */
export async function startBotWorld(
  options: { engine?: Partial<EngineOptions>; env?: Record<string, string>; dataDir?: string; fake?: FakeDiscord } = {},
): Promise<BotWorld> {
  // A restarted bot logs in to the same fake Discord, which keeps the guilds and history.
  const fake = options.fake ?? (await startFakeDiscord());
  const ownDir = options.dataDir === undefined ? await mkdtemp(join(tmpdir(), 'relevant-bot-')) : undefined;
  const dataDir = options.dataDir ?? ownDir!;
  const logs: string[] = [];
  const log: Logger = {
    debug: () => undefined,
    info: (m) => logs.push(`info ${m}`),
    warn: (m) => logs.push(`warn ${m}`),
    error: (m) => logs.push(`error ${m}`),
  };
  const config = loadBotConfig({
    ...fakeBotEnv(fake),
    DATA_DIR: dataDir,
    QUERIES_PER_MINUTE: '1000',
    AUTO_RETRAIN: 'false',
    ...options.env,
  });
  const { bot, engine, settings, close } = await wireBot({ config, log, clientOptions: fake.clientOptions(), engine: options.engine });
  await bot.start();
  let stopped = false;
  const world: BotWorld = {
    fake,
    bot,
    engine,
    settings,
    dataDir,
    logs,
    relevant: (guildId, channelId, userId, image, extra = []) => askRelevant(fake, { guildId, channelId, userId, image, extra }),
    async stop() {
      if (stopped) return;
      stopped = true;
      await close();
      if (!options.fake) await fake.close();
      if (ownDir) await rm(ownDir, { recursive: true, force: true });
    },
  };
  return world;
}

/** Uploads `image` and runs /relevant with it as `userId` in `channelId`; returns the interaction id. */
export function askRelevant(
  fake: FakeDiscord,
  query: { guildId: string; channelId: string; userId: string; image: Buffer; contentType?: string; extra?: CommandOptionInput[] },
): string {
  const upload = fake.uploadAttachment(query.channelId, { filename: 'query.png', data: query.image, contentType: query.contentType ?? 'image/png' });
  return fake.slashCommand({
    guildId: query.guildId,
    channelId: query.channelId,
    userId: query.userId,
    name: 'relevant',
    options: [{ name: 'image', type: ApplicationCommandOptionType.Attachment, value: upload.id }, ...(query.extra ?? [])],
  });
}

/** The jump links of every result in a result payload (the overview lists them in rank order). */
export function resultLinks(embeds: Array<{ description?: string }> | undefined): string[] {
  const text = (embeds ?? []).map((e) => e.description ?? '').join(' ');
  return [...text.matchAll(/\((https:\/\/discord\.com\/channels\/[0-9/]+)\)/g)].map((m) => m[1]);
}

export function messageLink(guildId: string, channelId: string, messageId: string): string {
  return `https://discord.com/channels/${guildId}/${channelId}/${messageId}`;
}

export interface ArtClub {
  guild: string;
  owner: string;
  painter: string;
  staffer: string;
  /** Everyone reads it. */
  art: string;
  /** Only the staff role (and the bot) can read it. */
  staff: string;
}

/** The guild the query tests share: a public channel, a staff-only one, and a member who can read each. */
export function addArtClub(fake: FakeDiscord): ArtClub {
  const { guild, botRole } = fake.addGuild({ name: 'Art club' });
  const staffRole = fake.addRole(guild.id, 'staff', 0n);
  const painter = fake.addUser({ username: 'painter' }).id;
  const staffer = fake.addUser({ username: 'staffer' }).id;
  fake.addMember(guild.id, painter);
  fake.addMember(guild.id, staffer, [staffRole.id]);
  const art = fake.addChannel(guild.id, { name: 'art' }).id;
  const view = PermissionFlagsBits.ViewChannel.toString();
  const staff = fake.addChannel(guild.id, {
    name: 'staff-art',
    overwrites: [
      { id: guild.id, type: OverwriteType.Role, allow: '0', deny: view },
      ...[staffRole.id, botRole.id].map((id) => ({ id, type: OverwriteType.Role, allow: view, deny: '0' })),
    ],
  }).id;
  return { guild: guild.id, owner: guild.ownerId, painter, staffer, art, staff };
}

/** A bot world holding the art club, both of its channels watched. */
export async function startArtClubWorld(): Promise<{ world: BotWorld; club: ArtClub }> {
  const world = await startBotWorld();
  const club = addArtClub(world.fake);
  await world.settings.watch(club.guild, club.art);
  await world.settings.watch(club.guild, club.staff);
  return { world, club };
}
