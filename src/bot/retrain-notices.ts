import type { Client } from 'discord.js';
import type { AutoRetrainEvent, RetrainProgress, RetrainSummary } from '../index/engine.js';
import type { Logger } from '../log.js';
import type { BotSettings } from './settings.js';
import { errorTextFor } from './user-text.js';

// What a retrain tells a server: /retrain's progress and outcome, and the notice of an automatic retrain.

export function describeProgress(p: RetrainProgress): string {
  if (p.phase === 'training' && p.epoch !== undefined && p.epochs !== undefined) {
    const eta = p.secondsPerEpoch ? `, about ${Math.ceil(((p.epochs - p.epoch) * p.secondsPerEpoch) / 60)} min left` : '';
    return `Retraining: epoch ${p.epoch}/${p.epochs}, loss ${p.loss?.toFixed(3)}${eta}.`;
  }
  const phases: Record<RetrainProgress['phase'], string> = {
    loading: 'Retraining: reading stored features…',
    training: 'Retraining…',
    checking: 'Retraining: comparing the new model with the current one…',
    encoding: 'Retraining: building the new index…',
    swapping: 'Retraining: switching to the new model…',
    style: 'Retraining: fitting the posters’ drawing styles for a trial…',
  };
  return phases[p.phase];
}

/** What a style trial means for the people judging answers (style-trial.ts). */
export const TRIAL_NOTE =
  'Trying a second key that takes each poster’s drawing style out: until 👍/👎 on answers decide between the two, answers mix results of both.';

export function describeSummary(summary: RetrainSummary): string {
  const before = summary.previousKey === 'raw' ? 'raw image features' : `model ${summary.previousKey}`;
  const check = `Quality check: ${summary.gate.reason}`;
  const trial = summary.trial ? [TRIAL_NOTE] : [];
  if (!summary.swapped) {
    return [
      `Trained a new model on ${summary.trainedOn} images in ${Math.round(summary.seconds)} s, but kept ${before}.`,
      check,
      'Use `/retrain force:true` to switch anyway.',
      ...trial,
    ].join('\n');
  }
  return [
    `Retrained on ${summary.trainedOn} images in ${Math.round(summary.seconds)} s.`,
    `Before: ${before}. After: model ${summary.key} (${summary.activeUnits}/${summary.latentDim} active dimensions, loss ${summary.loss.toFixed(3)}).`,
    summary.forced ? `${check} (switched anyway, as asked)` : check,
    ...trial,
  ].join('\n');
}

/** Posts a short notice about an automatic retrain in the guild's first watched channel; a failure is only logged. */
export function announceAutoRetrain(deps: { client: Client; settings: BotSettings; log: Logger }, event: AutoRetrainEvent): void {
  const text =
    event.phase === 'started'
      ? 'This server now has enough images: I am training its own relevance model in the background. Searches keep working meanwhile.'
      : event.phase === 'finished'
        ? describeSummary(event.summary)
        : `The automatic retrain stopped: ${errorTextFor(event.error, event.namespace)} The current model stays active.`;
  void (async () => {
    const [channelId] = await deps.settings.watched(event.namespace);
    const channel = channelId ? await deps.client.channels.fetch(channelId).catch(() => null) : null;
    if (channel?.isSendable()) await channel.send({ content: text });
  })().catch((error: Error) => deps.log.warn(`auto-retrain notice for ${event.namespace} failed: ${error.message}`));
}
