import type { Message, PartialMessage } from 'discord.js';
import { isAppError } from '../errors.js';
import type { Engine } from '../index/engine.js';
import type { Logger } from '../log.js';
import { downloadImage, type DownloadPolicy } from './download.js';
import type { SourceRef } from './access.js';
import { imagesOf } from './message-images.js';

export interface IngestOutcome {
  indexed: number;
  duplicates: number;
  failed: number;
  /** The stored images of the message's indexed and duplicate images (for repost notices). */
  ids: number[];
}

/**
 * Where a message's images are indexed: its channel when that is watched, or for a message in a thread or forum
 * post of a watched channel, that channel with the thread. Undefined when neither is watched.
 */
export async function watchedSourceOf(message: Message, isWatched: (guildId: string, channelId: string) => Promise<boolean>): Promise<SourceRef | undefined> {
  if (!message.guildId) return undefined;
  if (await isWatched(message.guildId, message.channelId)) return { channelId: message.channelId };
  const channel = message.client.channels.cache.get(message.channelId) ?? (await message.client.channels.fetch(message.channelId).catch(() => null));
  if (!channel?.isThread() || !channel.parentId) return undefined;
  return (await isWatched(message.guildId, channel.parentId)) ? { channelId: channel.parentId, threadId: channel.id } : undefined;
}

/**
 * Indexes the images of one message in its guild's namespace. The store keeps ids, never URLs (attachment URLs
 * expire); the message id is the ref that deletion events remove by.
 */
export async function indexMessage(
  engine: Engine,
  message: Message,
  policy: DownloadPolicy,
  log: Logger,
  source: SourceRef = { channelId: message.channelId },
  /** Only these image keys (an edit's new attachments); all by default. */
  only?: ReadonlySet<string>,
): Promise<IngestOutcome> {
  const outcome: IngestOutcome = { indexed: 0, duplicates: 0, failed: 0, ids: [] };
  if (!message.guildId || message.author.bot) return outcome;
  for (const image of imagesOf(message, policy.hosts)) {
    if (only && !only.has(image.key)) continue;
    try {
      const bytes = await downloadImage(image.url, policy);
      const result = await engine.index(bytes, {
        namespace: message.guildId,
        source: `discord:${message.guildId}/${message.channelId}/${message.id}/${image.key}`,
        ref: message.id,
        extra: {
          guildId: message.guildId,
          // A thread's or forum post's images belong to the watched channel; the thread decides who may see them.
          channelId: source.channelId,
          ...(source.threadId ? { threadId: source.threadId } : {}),
          messageId: message.id,
          imageKey: image.key,
          authorId: message.author.id,
          postedAt: message.createdAt.toISOString(),
        },
      });
      outcome.ids.push(result.record.id);
      if (result.status === 'indexed') outcome.indexed += 1;
      else outcome.duplicates += 1;
    } catch (error) {
      // Its author used /forget-me: not an error, and nothing to log per image.
      if (isAppError(error, 'OPTED_OUT')) continue;
      outcome.failed += 1;
      const reason = isAppError(error) ? error.message : String(error);
      log.warn(`message ${message.id} in channel ${message.channelId}: image ${image.key} skipped: ${reason}`);
      if (!isAppError(error)) throw error;
    }
  }
  return outcome;
}

/**
 * Runs message ingestion with bounded concurrency and a bounded backlog, so a burst of uploads cannot exhaust
 * memory; anything refused is logged with its reason, never dropped silently.
 */
export class IngestQueue {
  private readonly waiting: Array<() => Promise<void>> = [];
  private running = 0;

  constructor(
    private readonly concurrency: number,
    private readonly maxWaiting: number,
    private readonly log: Logger,
  ) {}

  get length(): number {
    return this.waiting.length + this.running;
  }

  /** Queues a task; returns false (and logs) when the backlog is full. */
  push(label: string, task: () => Promise<void>): boolean {
    if (this.waiting.length >= this.maxWaiting) {
      this.log.warn(`ingest backlog full (${this.maxWaiting}); ${label} not indexed (an admin can /unwatch and /watch the channel to read its history again)`);
      return false;
    }
    this.waiting.push(task);
    this.pump();
    return true;
  }

  /** Resolves when nothing is queued or running. */
  async idle(): Promise<void> {
    while (this.length > 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  private pump(): void {
    while (this.running < this.concurrency && this.waiting.length > 0) {
      const task = this.waiting.shift()!;
      this.running += 1;
      task()
        .catch((error: unknown) => this.log.error(`ingest task failed: ${(error as Error).message}`))
        .finally(() => {
          this.running -= 1;
          this.pump();
        });
    }
  }
}
