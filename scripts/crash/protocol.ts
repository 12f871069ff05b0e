import type { IndexResult, RetrainProgress } from '../../src/index/engine.js';
import type { VaeHyperParams } from '../../src/ml/vae-train.js';

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

/** Resolves once the message is handed to the IPC channel: what a child reports has happened before it goes on. */
export function sendToParent<M>(message: M): Promise<void> {
  return new Promise((resolve, reject) => process.send!(message, (error: Error | null) => (error ? reject(error) : resolve())));
}
