// The retrains a process runs: at most one per namespace, started on request or automatically when the policy says
// one is due, and stopped when their namespace is dropped or the engine closes. The retrain itself is retrain.ts.
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Namespace } from './namespace.js';
import { retrainNamespace, type RetrainContext, type RetrainProgress, type RetrainSummary } from './retrain.js';

export type AutoRetrainEvent =
  | { namespace: string; phase: 'started' }
  | { namespace: string; phase: 'finished'; summary: RetrainSummary }
  | { namespace: string; phase: 'failed'; error: Error };

export interface RetrainRunsOptions {
  log: Logger;
  namespace: (name: string) => Promise<Namespace>;
  /** What a retrain of `ns` is given besides the namespace (feature size, settings, the extractor). */
  context: (ns: Namespace) => Omit<RetrainContext, 'ns'>;
  /** A retrain is due once a namespace holds `minImages`, and again when it has grown by `growth`×. */
  policy?: { minImages: number; growth: number } | false;
  autoRetrain?: boolean | ((namespace: string) => boolean | Promise<boolean>);
  onAutoRetrain?: (event: AutoRetrainEvent) => void;
}

export class RetrainRuns {
  private readonly running = new Map<string, { promise: Promise<RetrainSummary>; controller: AbortController }>();

  constructor(private readonly options: RetrainRunsOptions) {}

  /** Rejects with BUSY (thrown, not returned) while a retrain of the namespace runs. */
  start(name: string, onProgress?: (p: RetrainProgress) => void, signal?: AbortSignal, force = false): Promise<RetrainSummary> {
    if (this.running.has(name)) {
      throw new AppError('BUSY', `A retrain of "${name}" is already running; wait for it to finish.`);
    }
    const controller = new AbortController();
    signal?.addEventListener('abort', () => controller.abort(), { once: true });
    const run = async () => {
      const ns = await this.options.namespace(name);
      return retrainNamespace({ ns, ...this.options.context(ns) }, controller.signal, onProgress ?? (() => undefined), force);
    };
    const promise = run().finally(() => this.running.delete(name));
    this.running.set(name, { promise, controller });
    return promise;
  }

  async due(ns: Namespace): Promise<boolean> {
    const policy = this.options.policy;
    if (!policy) return false;
    const count = await ns.store.count();
    // A rejected candidate also counts as an attempt, so a namespace is not retrained after every new image.
    const lastAttempt = await ns.store.getMeta<number>('lastRetrainCount');
    if (lastAttempt === undefined) return count >= policy.minImages;
    return count >= Math.max(policy.minImages, lastAttempt * policy.growth);
  }

  /** After an image was indexed: starts a retrain in the background when one is due and allowed. */
  async afterIndexed(ns: Namespace): Promise<void> {
    const { name } = ns;
    const { log, onAutoRetrain } = this.options;
    if (this.running.has(name) || !(await this.due(ns)) || !(await this.allowed(name))) return;
    log.info(`namespace ${name}: ${await ns.store.count()} images, starting an automatic retrain`);
    onAutoRetrain?.({ namespace: name, phase: 'started' });
    this.start(name).then(
      (summary) => onAutoRetrain?.({ namespace: name, phase: 'finished', summary }),
      (error: Error) => {
        log.warn(`namespace ${name}: automatic retrain failed: ${error.message}`);
        onAutoRetrain?.({ namespace: name, phase: 'failed', error });
      },
    );
  }

  /** Resolves when the namespace's retrain (if any) has ended, however it ended. */
  async settled(name: string): Promise<void> {
    await this.running.get(name)?.promise.catch(() => undefined);
  }

  /** Cancels the namespace's retrain and waits for it to end. */
  async stop(name: string): Promise<void> {
    this.running.get(name)?.controller.abort();
    await this.settled(name);
  }

  async stopAll(): Promise<void> {
    for (const name of this.running.keys()) await this.stop(name);
  }

  private async allowed(name: string): Promise<boolean> {
    const setting = this.options.autoRetrain;
    return typeof setting === 'function' ? setting(name) : setting === true;
  }
}
