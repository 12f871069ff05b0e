import { AppError } from '../errors.js';
import type { BotContext } from './context.js';
import { ownsNamespace, shardScopeOf } from './shards.js';

/** What every shard process exposes on its client for the other shards' `broadcastEval` (a plain property: the
 * evaluated function is sent as source text, so it can only reach what hangs off the client). */
interface ForgetHost {
  relevanceForgetUser(userId: string): Promise<number>;
}

/** Removes a person's images, their 👍/👎 and their style offset from the namespaces this process owns; returns how many images went. */
export async function forgetUserHere(ctx: Pick<BotContext, 'client' | 'engine' | 'log'>, userId: string): Promise<number> {
  const scope = shardScopeOf(ctx.client);
  let removed = 0;
  for (const namespace of await ctx.engine.namespaces()) {
    if (!ownsNamespace(scope, namespace)) continue;
    removed += (await ctx.engine.removeWhere((record) => record.extra?.authorId === userId, { namespace })).length;
    // Their 👍/👎 say what they looked for, and a style key's offset for them is the mean of their images: those go too.
    await (await ctx.engine.feedback(namespace)).removeAsker(userId);
    await ctx.engine.forgetPoster(userId, { namespace });
  }
  return removed;
}

/** Lets the other shards of this bot reach `forgetUserHere` in this process (see `forgetUserEverywhere`). */
export function exposeForgetUser(ctx: Pick<BotContext, 'client' | 'engine' | 'log'>): void {
  const host: ForgetHost = { relevanceForgetUser: (userId) => forgetUserHere(ctx, userId) };
  Object.defineProperty(ctx.client, 'relevanceForgetUser', { value: host.relevanceForgetUser });
}

/**
 * Removes a person's images in every guild of this bot. Unsharded that is this process; sharded, every shard
 * process of the ShardingManager removes them from the guilds it owns (`broadcastEval` through the manager), since
 * no process opens another shard's namespaces. If a shard cannot be reached (it is being restarted), the caller
 * has already recorded the opt-out, and the person is asked to run it again.
 */
export async function forgetUserEverywhere(ctx: Pick<BotContext, 'client' | 'engine' | 'log'>, userId: string): Promise<number> {
  const shard = ctx.client.shard;
  if (!shard) return forgetUserHere(ctx, userId);
  try {
    const counts = await shard.broadcastEval((client, context) => (client as unknown as ForgetHost).relevanceForgetUser(context.userId), {
      context: { userId },
    });
    return counts.reduce((sum, count) => sum + count, 0);
  } catch (error) {
    ctx.log.warn(`forget-me: not every shard could be reached (${(error as Error).message})`);
    throw new AppError(
      'BUSY',
      'Your opt-out is recorded and no new image of yours will be indexed, but some servers I am in could not be reached just now to remove your earlier images. Please run /forget-me again in a few minutes.',
      { cause: error },
    );
  }
}
