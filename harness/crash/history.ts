// A watched channel's history for the backfill crash scenario, posted to the fake Discord, and what it should
// become in the store: every image attachment exactly once, under its own message and attachment id.
import { sha256 } from '../../src/util/atomic-file.js';
import type { FakeDiscord, FileInput } from '../fake-discord/index.js';
import { patternImage } from './scenarios.js';

/** How the scenario names one attachment: the same ids the bot stores in an image's `extra`. */
export const attachmentKey = (messageId: string, imageKey: string) => `${messageId}/${imageKey}`;

export interface HistoryMessage {
  id: string;
  /** Image attachment id → sha256 of its bytes (other attachments are not listed: the bot skips them). */
  images: Map<string, string>;
}

export interface History {
  channelId: string;
  /** Oldest first. */
  messages: HistoryMessage[];
  imageCount: number;
}

/**
 * `count` messages, oldest first, a minute apart: mostly one distinct image, some with two, some with text only
 * and some with a text file, so pages differ in how many images they hold.
 */
export async function postHistory(fake: FakeDiscord, channelId: string, authorId: string, count: number, random: () => number): Promise<History> {
  const start = Date.now() - count * 60_000;
  const messages: HistoryMessage[] = [];
  let imageCount = 0;
  for (let i = 0; i < count; i++) {
    const kind = random();
    const imageFiles = kind < 0.15 ? 0 : kind < 0.3 ? 2 : 1;
    const files: FileInput[] = [];
    for (let f = 0; f < imageFiles; f++) files.push({ filename: `m${i}-${f}.png`, data: await patternImage(random), contentType: 'image/png' });
    if (kind >= 0.9) files.push({ filename: `notes${i}.txt`, data: Buffer.from(`notes ${i}`), contentType: 'text/plain' });
    const posted = fake.postMessage({ channelId, authorId, content: `history ${i}`, files, timestamp: new Date(start + i * 60_000), dispatch: false });
    const images = new Map<string, string>();
    posted.attachments.forEach((attachment, f) => {
      if (f < imageFiles) images.set(attachment.id, sha256(files[f].data));
    });
    imageCount += images.size;
    messages.push({ id: posted.id, images });
  }
  return { channelId, messages, imageCount };
}

/** The messages a backfill whose cursor is `before` (the oldest message done) has finished: that one and newer. */
export function messagesDone(history: History, state: { before?: string; done: boolean } | undefined): HistoryMessage[] {
  if (!state) return [];
  if (state.done) return history.messages;
  if (state.before === undefined) return [];
  const cursor = BigInt(state.before);
  return history.messages.filter((m) => BigInt(m.id) >= cursor);
}

/**
 * The last image the bot indexes in each page of 100 (newest first): right after it come the page's cursor save
 * and the next page's fetch, the moments a kill aimed at a page boundary should land on.
 */
export function pageEndImages(history: History, pageSize: number): Set<string> {
  const newestFirst = [...history.messages].reverse();
  const ends = new Set<string>();
  for (let i = 0; i < newestFirst.length; i += pageSize) {
    const last = newestFirst.slice(i, i + pageSize).findLast((m) => m.images.size > 0);
    if (last) ends.add(attachmentKey(last.id, [...last.images.keys()].at(-1)!));
  }
  return ends;
}
