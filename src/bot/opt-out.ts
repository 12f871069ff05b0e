import { AppError } from '../errors.js';
import type { Engine } from '../index/engine.js';
import type { BotSettings } from './settings.js';

/**
 * The engine as the bot uses it: every image is indexed through `index`, so checking the author's /forget-me here
 * covers every ingest path (live posts, edits, history backfills) at once. An image whose author opted out while
 * it was being indexed is removed again right after: the /forget-me scan may already have passed it.
 */
export function honourOptOuts(engine: Engine, settings: BotSettings): Engine {
  const refuse = () => new AppError('OPTED_OUT', 'Its author asked not to have their images indexed (/forget-me).');
  return {
    ...engine,
    async index(bytes, meta) {
      const author = meta.extra?.authorId;
      if (author === undefined) return engine.index(bytes, meta);
      if (await settings.isOptedOut(author)) throw refuse();
      const result = await engine.index(bytes, meta);
      if (await settings.isOptedOut(author)) {
        const where = (view: { source: string }) => view.source === meta.source;
        if (meta.ref !== undefined) await engine.removeByRef(meta.ref, { namespace: meta.namespace, where });
        else await engine.removeWhere(where, { namespace: meta.namespace });
        throw refuse();
      }
      return result;
    },
  };
}
