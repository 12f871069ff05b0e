/**
 * One answer's search: in the current key space, or, while a style trial runs, in both the current key's and the
 * candidate's, interleaved so that the askers' judgements can compare them (style-trial.ts).
 */
import { feedbackKey, type Feedback } from './feedback.js';
import { filteredSearch, type Hit } from './filtered-search.js';
import type { KeySpace, Namespace } from './namespace.js';
import type { ImageRecord } from './store.js';
import { interleave } from './style-trial.js';

export interface AnswerSearch {
  /** The query's raw features and who posted it (its poster's style is taken out under a style key). */
  features: Float32Array;
  poster: string | undefined;
  k: number;
  exclude: number | undefined;
  filter: ((record: ImageRecord) => boolean | Promise<boolean>) | undefined;
  feedback: Feedback | undefined;
  /** Decides the interleaving's coin flips (tests, evaluations); Math.random by default. */
  random?: () => number;
  /** See QueryOptions.keys. */
  keys?: 'interleaved' | 'current' | 'candidate';
}

export async function answerSearch(ns: Namespace, search: AnswerSearch): Promise<Hit[]> {
  const inSpace = async (space: KeySpace) => {
    const start = space.key(search.features, search.poster);
    const key = search.feedback ? await feedbackKey(ns.store, space, start, search.feedback) : start;
    return filteredSearch(ns.store, space, key, search.k, search.exclude, search.filter);
  };
  const current = ns.current();
  const candidate = search.keys === 'current' ? undefined : ns.candidate();
  if (candidate && search.keys === 'candidate') return (await inSpace(candidate)).map((hit) => ({ ...hit, key: candidate.id }));
  const hits = await inSpace(current);
  if (!candidate) return hits;
  const drafted = interleave(
    hits.map((hit) => ({ id: hit.record.id, hit })),
    (await inSpace(candidate)).map((hit) => ({ id: hit.record.id, hit })),
    search.k,
    search.random ?? Math.random,
  );
  return drafted.map(({ hit, team }) => ({ ...hit, key: team === 'current' ? current.id : candidate.id }));
}
