import type { Logger } from '../log.js';
import { Namespace } from './namespace.js';

/**
 * The namespaces a process has open, each opened once (concurrent callers share the opening) and closed here.
 * A failed opening is forgotten, so the next call tries again (e.g. after a moved namespace is restored).
 */
export class NamespaceCache {
  private readonly open = new Map<string, Promise<Namespace>>();

  constructor(
    private readonly dataDir: string,
    /** Read when a namespace is first opened (the model's description is read at first use). */
    private readonly featureDim: () => number,
    private readonly log: Logger,
  ) {}

  get(name: string): Promise<Namespace> {
    let ns = this.open.get(name);
    if (!ns) {
      ns = (async () => Namespace.open(this.dataDir, name, this.featureDim(), this.log))();
      this.open.set(name, ns);
      ns.catch(() => this.open.delete(name));
    }
    return ns;
  }

  /** Closes the namespace if it is open (or opening); a failed opening has nothing to close. */
  async close(name: string): Promise<void> {
    const ns = this.open.get(name);
    this.open.delete(name);
    await (await ns?.catch(() => undefined))?.close();
  }

  async closeAll(): Promise<void> {
    for (const ns of this.open.values()) await (await ns.catch(() => undefined))?.close();
    this.open.clear();
  }
}
