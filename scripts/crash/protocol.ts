import type { VaeHyperParams } from '../../src/ml/vae-train.js';
import type { RetrainProgress } from '../../src/index/engine.js';

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
  | { type: 'ack'; name: string; id: number; sha256: string; status: 'indexed' | 'duplicate' }
  | { type: 'phase'; phase: RetrainProgress['phase'] }
  | { type: 'retrained'; key: string }
  | { type: 'done' };
