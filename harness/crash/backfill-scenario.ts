// Kills the real bot in the middle of a channel backfill at seeded random moments and restarts it on the same data
// dir until the backfill is done, then starts another channel until enough kills have landed. After every run it
// checks what the engine guarantees (restart-check.ts) and what the backfill promises: its cursor never passes a
// message whose images are not stored and never moves back, its counters match the cursor, and a finished backfill
// has stored every image of the history exactly once.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApplicationCommandOptionType } from 'discord.js';
import { BotSettings, type BackfillState } from '../../src/bot/settings.js';
import type { StoredImage } from '../../src/index/store.js';
import { mulberry32 } from '../../src/util/random.js';
import { startFakeDiscord, type FakeDiscord, type LoggedRequest } from '../fake-discord/index.js';
import { attachmentKey, messagesDone, pageEndImages, postHistory, type History } from './history.js';
import type { BotChildArgs, BotChildMessage } from './protocol.js';
import { checkAfterRestart } from './restart-check.js';
import { startChild, type KillTrigger } from './run-child.js';
import type { CrashOptions, ScenarioReport } from './scenarios.js';

const KILLED_BY_AIM = {
  watch: 'killedInWatch',
  'watch-reply': 'killedAfterWatchReply',
  'start-up': 'killedInStartUp',
  indexing: 'killedWhileIndexing',
  'page-end': 'killedAtPageEnd',
} as const;
const BOT_CHILD = fileURLToPath(new URL('./bot-child.js', import.meta.url));
const PAGE = 100;
/** From 'ready': the namespace opens (with its reconciliation) and the model loads for the first image. */
const START_UP_WINDOW_MS = 1500;
/** From the first new image committed (after re-read duplicates and the model load): up to two pages. */
const INDEXING_WINDOW_MS = 3000;
/** From 'ready', when /watch is sent: the command commits the watch, replies, then saves the backfill's first state. */
const WATCH_WINDOW_MS = 400;
/** From the reply to /watch (the watch is committed) to the backfill's first saved state: a few ms. */
const WATCH_REPLY_WINDOW_MS = 40;
/** From a page's last image commit: the rest of the page, its cursor save, the next page's fetch. */
const PAGE_END_WINDOW_MS = 60;
/** Far longer than any page takes: a child silent this long has hung (a backfill that never resumes). */
const STALL_MS = 60_000;

type Ack = Extract<BotChildMessage, { type: 'ack' }>;

/**
 * Where a run's kill is aimed. Before the channel is watched: anywhere in the /watch command, or just after its
 * reply. Afterwards: during start-up, while images are indexed (mostly mid-page, so the page is read again after
 * the restart), or just after the last image of the first or second page the run reads.
 */
type Aim = 'watch' | 'watch-reply' | 'start-up' | 'indexing' | 'page-end';

interface KillPlan {
  aim: Aim;
  delayMs: number;
  /** For aims the child reports (the reply to /watch is seen in the fake's request log instead). */
  trigger?: KillTrigger<BotChildMessage>;
}

function planKill(random: () => number, watched: boolean, pageEnds: Set<string>): KillPlan {
  const draw = random();
  if (!watched && draw < 0.5) {
    const delayMs = random() * WATCH_WINDOW_MS;
    return { aim: 'watch', delayMs, trigger: { on: (m) => m.type === 'ready', delayMs } };
  }
  if (!watched) return { aim: 'watch-reply', delayMs: random() * WATCH_REPLY_WINDOW_MS };
  if (draw < 0.25) {
    const delayMs = random() * START_UP_WINDOW_MS;
    return { aim: 'start-up', delayMs, trigger: { on: (m) => m.type === 'ready', delayMs } };
  }
  if (draw < 0.75) {
    const delayMs = random() * INDEXING_WINDOW_MS;
    return { aim: 'indexing', delayMs, trigger: { on: (m) => m.type === 'ack' && m.status === 'indexed', delayMs } };
  }
  const delayMs = random() * PAGE_END_WINDOW_MS;
  let skip = Math.floor(random() * 2);
  const on = (m: BotChildMessage) => m.type === 'ack' && pageEnds.has(attachmentKey(m.messageId, m.imageKey)) && skip-- === 0;
  return { aim: 'page-end', delayMs, trigger: { on, delayMs } };
}

interface Guild {
  fake: FakeDiscord;
  guildId: string;
  ownerId: string;
  authorId: string;
  /** Where /watch is typed, so its reply and status edits stay out of the watched history. */
  adminChannelId: string;
}

async function readBackfill(dataDir: string, guildId: string, channelId: string): Promise<{ watched: boolean; state?: BackfillState }> {
  const settings = await BotSettings.open(dataDir);
  try {
    return { watched: await settings.isWatched(guildId, channelId), state: await settings.backfill(channelId) };
  } finally {
    await settings.close();
  }
}

/** Types /watch in the admin channel as the owner; returns the interaction id. */
function sendWatch(guild: Guild, channelId: string): string {
  return guild.fake.slashCommand({
    guildId: guild.guildId,
    channelId: guild.adminChannelId,
    userId: guild.ownerId,
    name: 'watch',
    options: [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: channelId }],
  });
}

/** The store by attachment key (the ids the bot keeps in `extra`); more than one image under a key is a duplicate. */
function storedByAttachment(stored: Map<number, StoredImage>): Map<string, StoredImage[]> {
  const byKey = new Map<string, StoredImage[]>();
  for (const image of stored.values()) {
    const key = attachmentKey(image.extra?.messageId ?? '', image.extra?.imageKey ?? '');
    byKey.set(key, [...(byKey.get(key) ?? []), image]);
  }
  return byKey;
}

/** Each stored image is the attachment it is stored under (`expected`: key → sha256), once. */
function checkStoredImages(byKey: Map<string, StoredImage[]>, expected: Map<string, string>, label: string): string[] {
  const failures: string[] = [];
  for (const [key, stored] of byKey) {
    if (stored.length > 1) failures.push(`${label}: ${key} is stored ${stored.length} times`);
    if (expected.get(key) !== stored[0].sha256) failures.push(`${label}: stored image ${stored[0].id} (${key}) is not that attachment`);
  }
  return failures;
}

/**
 * The saved cursor against the store: every image of a message the cursor has passed is stored, and the counters
 * say what the cursor says. Returns how many messages the cursor has passed, for the never-moves-back check.
 */
function checkCursor(history: History, state: BackfillState | undefined, byKey: Map<string, StoredImage[]>, label: string): { failures: string[]; done: number } {
  const failures: string[] = [];
  const done = messagesDone(history, state);
  for (const message of done) {
    for (const key of message.images.keys()) {
      if (!byKey.has(attachmentKey(message.id, key))) failures.push(`${label}: the cursor is past message ${message.id} but its image ${key} is not stored`);
    }
  }
  const doneImages = done.reduce((n, m) => n + m.images.size, 0);
  if (state && (state.messages !== done.length || state.images !== doneImages)) {
    failures.push(`${label}: the backfill says ${state.messages} messages and ${state.images} images read; its cursor says ${done.length} and ${doneImages}`);
  }
  return { failures, done: done.length };
}

/** GETs of the channel's history, and how many of them asked for a page already asked for (re-read after a kill). */
function pageFetches(fake: FakeDiscord, channelId: string): { fetched: number; refetched: number } {
  const cursors = fake.requests
    .filter((r) => r.method === 'GET' && r.route === '/channels/:channelId/messages' && r.params.channelId === channelId)
    .map((r) => r.query.before ?? 'newest');
  return { fetched: cursors.length, refetched: cursors.length - new Set(cursors).size };
}

export async function runBackfillScenario(options: CrashOptions): Promise<ScenarioReport> {
  const dataDir = join(options.workDir, 'backfill-data');
  const fake = await startFakeDiscord();
  const { guild: fakeGuild } = fake.addGuild({ name: 'crash' });
  const authorId = fake.addUser({ username: 'painter' }).id;
  fake.addMember(fakeGuild.id, authorId);
  const guild: Guild = { fake, guildId: fakeGuild.id, ownerId: fakeGuild.ownerId, authorId, adminChannelId: fake.addChannel(fakeGuild.id, { name: 'admin' }).id };
  const kills = mulberry32(options.seed + 4);
  const images = mulberry32(options.seed + 5);
  const histories = new Map<string, History>();
  const expected = new Map<string, string>();
  const acknowledged = new Map<number, string>();
  const failures: string[] = [];
  const figures = {
    backfills: 0,
    messages: 0,
    images: 0,
    acknowledged: 0,
    restarts: 0,
    killedInWatch: 0,
    killedAfterWatchReply: 0,
    killedInStartUp: 0,
    killedWhileIndexing: 0,
    killedAtPageEnd: 0,
    watchResent: 0,
    watchedWithoutState: 0,
    reReadImages: 0,
    pagesFetched: 0,
    pagesRefetched: 0,
    duplicatesStored: 0,
    reconciledAdded: 0,
    rebuiltFromStore: 0,
    tempFilesRemoved: 0,
    graphMisses: 0,
  };
  let killed = 0;
  let completed = 0;

  try {
    while (killed < options.kills) {
      const channelId = fake.addChannel(guild.guildId, { name: `history-${histories.size + 1}` }).id;
      const history = await postHistory(fake, channelId, authorId, options.backfillMessages, images);
      histories.set(channelId, history);
      const pageEnds = pageEndImages(history, PAGE);
      for (const message of history.messages) for (const [key, sha] of message.images) expected.set(attachmentKey(message.id, key), sha);
      figures.messages += history.messages.length;
      figures.images += history.imageCount;
      let doneBefore = 0;
      let sentWatch = false;
      // The check of the run that finished the backfill covered every image; this is for the figure.
      let finalStore = new Map<string, StoredImage[]>();

      for (;;) {
        figures.restarts += 1;
        const { watched, state: before } = await readBackfill(dataDir, guild.guildId, channelId);
        // The window of the bug resumeAll now handles: /watch committed, the backfill's first state not yet saved.
        if (watched && !before) figures.watchedWithoutState += 1;
        const plan = killed < options.kills ? planKill(kills, watched, pageEnds) : undefined;
        if (!watched && sentWatch) figures.watchResent += 1;
        const args: BotChildArgs = { token: fake.token, apiUrl: fake.apiUrl, cdnUrl: fake.cdnUrl, dataDir, channelId };
        let watchId: string | undefined;
        const child = startChild<BotChildMessage>(BOT_CHILD, [JSON.stringify(args)], {
          trigger: plan?.trigger,
          stallMs: STALL_MS,
          onMessage: (m) => {
            if (m.type === 'ready' && !watched) {
              sentWatch = true;
              watchId = sendWatch(guild, channelId);
            }
          },
        });
        const onRequest = (request: LoggedRequest) => {
          if (plan?.aim === 'watch-reply' && request.route === '/interactions/:interactionId/:token/callback' && request.params.interactionId === watchId) child.kill(plan.delayMs);
        };
        fake.events.on('request', onRequest);
        const run = await child.done.finally(() => fake.events.off('request', onRequest));
        if (run.killed) killed += 1;
        else if (!run.stalled) completed += 1;
        const acks = run.messages.filter((m): m is Ack => m.type === 'ack');
        const how = run.stalled ? 'STALLED' : run.killed && plan ? `killed ${Math.round(plan.delayMs)} ms after ${plan.aim}` : 'completed';
        const label = `backfill ${histories.size} run ${figures.restarts} (${how}, ${acks.length} acks)`;
        if (run.killed && plan) figures[KILLED_BY_AIM[plan.aim]] += 1;
        if (run.stalled) failures.push(`${label}: the bot made no progress for ${STALL_MS / 1000} s`);
        for (const m of run.messages) if (m.type === 'log' && /^(warn|error)/.test(m.line)) failures.push(`${label}: the bot logged: ${m.line}`);
        for (const ack of acks) {
          if (expected.get(attachmentKey(ack.messageId, ack.imageKey)) !== ack.sha256) failures.push(`${label}: acknowledged ${ack.id} under ${attachmentKey(ack.messageId, ack.imageKey)}, which holds other bytes`);
          if (acknowledged.has(ack.id) && acknowledged.get(ack.id) !== ack.sha256) failures.push(`${label}: id ${ack.id} acknowledged for two images`);
          acknowledged.set(ack.id, ack.sha256);
          if (ack.status === 'duplicate') figures.reReadImages += 1;
        }

        const restart = await checkAfterRestart(dataDir, guild.guildId, acknowledged, label);
        failures.push(...restart.failures);
        if (restart.rebuilt) figures.rebuiltFromStore += 1;
        figures.tempFilesRemoved += restart.tempFilesRemoved;
        figures.graphMisses += restart.graphMisses;
        figures.reconciledAdded += restart.reconciled.added;
        const byKey = storedByAttachment(restart.stored);
        finalStore = byKey;
        failures.push(...checkStoredImages(byKey, expected, label));
        const { state } = await readBackfill(dataDir, guild.guildId, channelId);
        const cursor = checkCursor(history, state, byKey, label);
        failures.push(...cursor.failures);
        if (cursor.done < doneBefore) failures.push(`${label}: the cursor moved back from ${doneBefore} to ${cursor.done} messages done`);
        doneBefore = cursor.done;
        if (!run.killed && !run.stalled && !state?.done) failures.push(`${label}: the bot exited before its backfill was done`);
        options.progress?.(`${label}: cursor ${cursor.done}/${history.messages.length} messages, store ${restart.stored.size}${restart.rebuilt ? ', rebuilt' : ''}`);
        if (run.stalled) return report();
        if (state?.done) break;
      }

      for (const m of history.messages) for (const key of m.images.keys()) figures.duplicatesStored += Math.max(0, (finalStore.get(attachmentKey(m.id, key))?.length ?? 0) - 1);
      const pages = pageFetches(fake, channelId);
      figures.pagesFetched += pages.fetched;
      figures.pagesRefetched += pages.refetched;
      figures.backfills += 1;
    }
    return report();
  } finally {
    await fake.close();
  }

  function report(): ScenarioReport {
    figures.acknowledged = acknowledged.size;
    return { scenario: 'backfill', kills: killed, completed, failures, figures };
  }
}
