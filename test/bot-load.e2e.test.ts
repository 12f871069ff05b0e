import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationCommandOptionType } from 'discord.js';
import sharp from 'sharp';
import { startBotWorld, type BotWorld } from './helpers/bot-world.js';
import { waitFor } from './helpers/wait.js';

// CI runs a short burst; `LOAD_MESSAGES=10000 node --test dist/test/bot-load.e2e.test.js` is the full-size run.
const MESSAGES = Number(process.env.LOAD_MESSAGES ?? 300);

/**
 * Distinct small images: a colour field with a few shapes. The shapes repeat every 720 seeds, so a marker whose
 * position encodes the seed (unique below 2,360) keeps every image's bytes distinct.
 */
async function generated(seed: number): Promise<Buffer> {
  const hue = (seed * 47) % 360;
  const x = (seed * 13) % 80;
  const y = (seed * 29) % 80;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128"><rect width="128" height="128" fill="hsl(${hue},60%,60%)"/>
    <circle cx="${x + 20}" cy="${y + 20}" r="${10 + (seed % 20)}" fill="hsl(${(hue + 180) % 360},70%,40%)"/>
    <rect x="${(x * 3) % 90}" y="${(y * 5) % 90}" width="30" height="${10 + (seed % 30)}" fill="hsl(${(hue + 90) % 360},50%,30%)"/>
    <rect x="${Math.floor(seed / 20) % 118}" y="${(seed % 20) * 6}" width="10" height="6" fill="#000"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

let world: BotWorld | undefined;
after(() => world?.stop());

test(`a burst of ${MESSAGES} image messages: nothing dropped silently, memory bounded, /relevant stays responsive`, async () => {
  world = await startBotWorld();
  const { fake } = world;
  const { guild } = fake.addGuild();
  const painter = fake.addUser({ username: 'painter' }).id;
  fake.addMember(guild.id, painter);
  const channel = fake.addChannel(guild.id, { name: 'busy' }).id;
  await fake.waitForReply(
    fake.slashCommand({ guildId: guild.id, channelId: channel, userId: guild.ownerId, name: 'watch', options: [{ name: 'channel', type: ApplicationCommandOptionType.Channel, value: channel }] }),
  );
  const images = await Promise.all(Array.from({ length: Math.min(MESSAGES, 2000) }, (_, i) => generated(i)));
  // Before the marker, seeds repeated every 720 and a full-size run waited for 2,000 images that could not exist.
  assert.equal(new Set(images.map((image) => createHash('sha256').update(image).digest('hex'))).size, images.length, 'distinct images');
  // Seed the index so queries have something to find from the start.
  for (let i = 0; i < 20; i++) fake.postMessage({ channelId: channel, authorId: painter, files: [{ filename: `seed${i}.png`, data: await generated(100_000 + i) }] });
  await waitFor('the seed images', async () => (await world!.engine.stats(guild.id)).images === 20);

  const rssBefore = process.memoryUsage().rss;
  const started = Date.now();
  const latencies: number[] = [];
  let posting = true;
  const querying = (async () => {
    while (posting) {
      const id = world!.relevant(guild.id, channel, painter, images[latencies.length % images.length]);
      const reply = await fake.waitForReply(id, { timeoutMs: 30_000 });
      latencies.push(reply.record.replyLatencyMs ?? Number.POSITIVE_INFINITY);
      await sleep(200);
    }
  })();
  for (let i = 0; i < MESSAGES; i++) {
    fake.postMessage({ channelId: channel, authorId: painter, files: [{ filename: `b${i}.png`, data: images[i % images.length] }] });
    if (i % 50 === 49) await sleep(10);
  }
  const distinct = Math.min(MESSAGES, images.length);
  let peakQueue = 0;
  await waitFor(
    'the burst to be indexed',
    async () => {
      peakQueue = Math.max(peakQueue, world!.bot.context.ingest.length);
      return (await world!.engine.stats(guild.id)).images >= 20 + distinct && world!.bot.context.ingest.length === 0;
    },
    60 * 60_000,
  );
  posting = false;
  await querying;
  const seconds = (Date.now() - started) / 1000;
  const sorted = [...latencies].sort((a, b) => a - b);
  const p95 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))];
  const rssGrowthMb = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
  console.log(
    `# ${MESSAGES} messages in ${seconds.toFixed(1)} s (${(MESSAGES / seconds).toFixed(1)}/s); peak queue ${peakQueue}; ` +
      `/relevant during the burst: ${latencies.length} answers, p50 ${sorted[Math.floor(sorted.length / 2)]} ms, p95 ${p95} ms; ` +
      `RSS growth ${rssGrowthMb.toFixed(0)} MB, peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
  );
  assert.equal((await world.engine.stats(guild.id)).images, 20 + distinct, 'every distinct image indexed, duplicates once');
  assert.ok(!world.logs.some((l) => /backlog full/.test(l)), 'nothing refused at this size');
  assert.ok(latencies.length >= 3 && Number.isFinite(p95), 'queries were answered during the burst');
});
