import type { IndexResult, RetrainProgress } from '../../src/index/engine.js';
import type { VaeHyperParams } from '../../src/ml/vae-hyper.js';
import type { FakeEndpoints } from '../fake-discord/client.js';

export interface ChildArgs {
  dataDir: string;
  imagesDir?: string;
  concurrency?: number;
  /** Index of the first file (in name order) to ingest. */
  from?: number;
  vaeHyper?: Partial<VaeHyperParams>;
}

export type ChildMessage =
  | { type: 'started' }
  | { type: 'ack'; name: string; id: number; sha256: string; status: IndexResult['status'] }
  | { type: 'phase'; phase: RetrainProgress['phase'] }
  | { type: 'retrained'; key: string }
  | { type: 'done' };

/** The bot child logs in to the parent's fake Discord and runs until the backfill of `channelId` is done. */
export interface BotChildArgs extends FakeEndpoints {
  dataDir: string;
  channelId: string;
}

export type BotChildMessage =
  | { type: 'started' }
  /** Logged in; unfinished backfills resumed. */
  | { type: 'ready' }
  | { type: 'ack'; messageId: string; imageKey: string; id: number; sha256: string; status: IndexResult['status'] }
  /** Every line the bot logged above debug. */
  | { type: 'log'; line: string }
  | { type: 'done' };

/** Resolves once the message is handed to the IPC channel: what a child reports has happened before it goes on. */
export function sendToParent<M>(message: M): Promise<void> {
  return new Promise((resolve, reject) => process.send!(message, (error: Error | null) => (error ? reject(error) : resolve())));
}
