import type { Guild, GuildBasedChannel, GuildMember } from 'discord.js';
import { referenceViews, type ImageRecord } from '../index/store.js';
import { channelById, Places, placeOf, resultFilter, sourceOf, type Place } from './access.js';
import { AnswerAudience } from './audience.js';

/**
 * The rules of one answer, judged one post (reference) at a time: identical files posted in several channels are
 * one image, and each post is readable by different people.
 */
export interface AnswerRules {
  /** The asker can read the image through this post (and the NSFW rule holds). */
  readable(view: ImageRecord): Promise<boolean>;
  /** Showing the image through this post would show it to someone who reads the answer but not the post. */
  exposes(view: ImageRecord): Promise<boolean>;
}

export function answerRules(
  guild: Guild,
  scope: { member: GuildMember; channel: GuildBasedChannel; place: Place; sameChannelOnly?: boolean },
): AnswerRules {
  const places = new Places(guild);
  const readable = resultFilter(guild, scope, places);
  const audience = new AnswerAudience(guild, scope.place, places);
  return {
    readable,
    async exposes(view) {
      const ref = sourceOf(view);
      return ref === undefined || audience.exposes(ref);
    },
  };
}

/** The rules of an answer shown in `channelId` for `member`; undefined when that channel is not one the bot knows. */
export async function answerRulesIn(guild: Guild, member: GuildMember, channelId: string): Promise<AnswerRules | undefined> {
  const channel = await channelById(guild, channelId);
  const place = channel && placeOf(channel);
  return channel && place ? answerRules(guild, { member, channel, place }) : undefined;
}

/**
 * The post to show `record` through on a public message: one the asker can read that exposes nothing (`preferred`,
 * the one shown so far, first), else the first one the asker can read, flagged `exposes`. Undefined when the asker
 * can read none.
 */
export async function pickView(record: ImageRecord, rules: AnswerRules, preferred?: string): Promise<{ view: ImageRecord; exposes: boolean } | undefined> {
  const views = referenceViews(record).sort((a, b) => Number(b.source === preferred) - Number(a.source === preferred));
  let exposing: ImageRecord | undefined;
  for (const view of views) {
    if (!(await rules.readable(view))) continue;
    if (!(await rules.exposes(view))) return { view, exposes: false };
    exposing ??= view;
  }
  return exposing && { view: exposing, exposes: true };
}

/**
 * The engine's filter for a public answer that leaves out what would expose: the engine asks about each post of a
 * candidate in turn and keeps the first accepted, so a candidate is shown through a post that exposes nothing when
 * it has one. `withheld()` tells whether some candidate was left out only because every post the asker can read
 * would expose it.
 */
export function publicFilter(rules: AnswerRules, checkAudience = true): { filter: (view: ImageRecord) => Promise<boolean>; withheld: () => boolean } {
  const exposing = new Set<number>();
  const accepted = new Set<number>();
  return {
    async filter(view) {
      if (!(await rules.readable(view))) return false;
      if (checkAudience && (await rules.exposes(view))) {
        exposing.add(view.id);
        return false;
      }
      accepted.add(view.id);
      return true;
    },
    withheld: () => [...exposing].some((id) => !accepted.has(id)),
  };
}
