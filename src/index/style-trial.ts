/**
 * A trial of a candidate key that no label-free signal can judge (the style key, style-key.ts), decided by the
 * askers. While it runs, every answer is drafted from the current key's results and the candidate's (team-draft
 * interleaving), and each 👍 or 👎 counts for or against the key that contributed the judged result. Judgements
 * made on one key's answers alone cannot judge a key that would show other images: they adopted harmful style keys
 * in a quarter to nine tenths of simulated trials, where interleaving refused them (docs/relevance.md, "Style").
 */
import type { StoredJudgement } from './feedback-store.js';

/** Answers (an asker's judgements on one query) that must favour one key before the trial is decided. */
export const TRIAL_ANSWERS = 25;

/**
 * Days a trial may run undecided. While it runs half of each answer comes from a key that may be worse (on clip art
 * whose posters each post one subject, interleaving cost 0.07 P@20 until the askers refused it); a community that
 * rarely judges answers should not pay that for long. An expired trial ends without adopting the candidate.
 */
export const TRIAL_DAYS = 30;

export interface TrialState {
  /** The candidate's key id (judgements name it), and the key it is tried against. */
  candidate: string;
  current: string;
  /** ISO time the trial started: judgements before it are not evidence. */
  started: string;
}

export interface TrialTally {
  /** Judged answers whose judgements favoured the candidate, the current key, or neither. */
  candidateWins: number;
  currentWins: number;
  ties: number;
}

export type TrialDecision = 'adopt' | 'refuse' | 'running';

/**
 * Team-draft interleaving (Radlinski, Kurup & Joachims 2008): in each round the key with fewer picks so far (a coin
 * decides a tie) adds its best result not yet shown. Each result is credited to the key that picked it.
 */
export function interleave<T extends { id: number }>(current: readonly T[], candidate: readonly T[], k: number, random: () => number): Array<T & { team: 'current' | 'candidate' }> {
  const out: Array<T & { team: 'current' | 'candidate' }> = [];
  const shown = new Set<number>();
  const next = { current: 0, candidate: 0 };
  const picks = { current: 0, candidate: 0 };
  const lists = { current, candidate };
  const take = (team: 'current' | 'candidate'): boolean => {
    const list = lists[team];
    while (next[team] < list.length && shown.has(list[next[team]].id)) next[team] += 1;
    if (next[team] >= list.length) return false;
    const item = list[next[team]];
    shown.add(item.id);
    out.push({ ...item, team });
    picks[team] += 1;
    return true;
  };
  while (out.length < k) {
    const first = picks.current < picks.candidate || (picks.current === picks.candidate && random() < 0.5) ? 'current' : 'candidate';
    if (take(first)) continue;
    if (!take(first === 'current' ? 'candidate' : 'current')) break;
  }
  return out;
}

/** Counts, per judged answer since the trial started, which key its judgements favoured. */
export function tally(trial: TrialState, judgements: readonly StoredJudgement[]): TrialTally {
  const credit = new Map<string, number>();
  for (const j of judgements) {
    if (j.at < trial.started || (j.key !== trial.candidate && j.key !== trial.current)) continue;
    const answer = `${j.asker}|${j.queryId ?? j.queryF16}`;
    credit.set(answer, (credit.get(answer) ?? 0) + (j.key === trial.candidate ? j.sign : -j.sign));
  }
  const out: TrialTally = { candidateWins: 0, currentWins: 0, ties: 0 };
  for (const c of credit.values()) {
    if (c > 0) out.candidateWins += 1;
    else if (c < 0) out.currentWins += 1;
    else out.ties += 1;
  }
  return out;
}

/** Decided once TRIAL_ANSWERS judged answers favoured one key: the candidate is adopted if it won more of them. */
export function decide(t: TrialTally, answers = TRIAL_ANSWERS): TrialDecision {
  if (t.candidateWins + t.currentWins < answers) return 'running';
  return t.candidateWins > t.currentWins ? 'adopt' : 'refuse';
}

/** Whether a trial has run undecided for longer than TRIAL_DAYS. */
export function expired(trial: TrialState, now = Date.now()): boolean {
  return now - Date.parse(trial.started) > TRIAL_DAYS * 86_400_000;
}
