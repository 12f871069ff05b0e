import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError, isAppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Background } from '../ml/image.js';
import { loadVae } from '../ml/vae-files.js';
import type { VaeModel } from '../ml/vae-model.js';
import { FeatureStore } from './store.js';
import { removeStaleTempFiles } from '../util/atomic-file.js';
import { VectorIndex, removeIndexFiles, removeOtherIndexFiles } from './vector-index.js';

/** Which vectors the index is keyed on: the raw MobileNetV2 features until the namespace has its own VAE. */
export type ActiveKey = { kind: 'raw' } | { kind: 'vae'; vaeId: string };

export const RAW_KEY_ID = 'raw';
const SAVE_DELAY_MS = 2_000;

/** A PCA key is kept in the VAE's format (linear-key.ts) but named for what it is: `pca64w-…`. */
export function keyIdOf(key: ActiveKey): string {
  if (key.kind === 'raw') return RAW_KEY_ID;
  return key.vaeId.startsWith('pca') ? key.vaeId : `vae-${key.vaeId}`;
}

export function vaeDir(dir: string, vaeId: string): string {
  return join(dir, 'vae', vaeId);
}

export function namespaceDir(dataDir: string, name: string): string {
  return join(dataDir, 'namespaces', name);
}

/**
 * Left in a namespace's folder by `relevant export`: the collection now lives on another machine, so this one must
 * not serve it (and drift from the moved copy). Removing the file by hand undoes the move on this side.
 */
export const MOVED_MARKER = 'MOVED';

export function validateNamespaceName(name: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
    throw new AppError('CONFIG_INVALID', `"${name}" is not a valid namespace name (letters, digits, - and _, up to 64).`);
  }
  return name;
}

/**
 * One namespace (a guild, or the CLI's local collection): its store, the VAE it is keyed on, and its index.
 * Everything a namespace owns lives in one folder, so it can be moved to another machine as a unit.
 */
export class Namespace {
  private saveTimer: NodeJS.Timeout | undefined;
  private dirty = false;

  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly store: FeatureStore,
    private activeKey: ActiveKey,
    private vae: VaeModel | undefined,
    private index: VectorIndex,
    private readonly log: Logger,
    /** What transparency is flattened onto for this namespace's images: fixed at creation, see `open`. */
    readonly background: Background,
  ) {}

  static async open(dataDir: string, name: string, featureDim: number, log: Logger): Promise<Namespace> {
    const dir = namespaceDir(dataDir, validateNamespaceName(name));
    if (existsSync(join(dir, MOVED_MARKER))) {
      throw new AppError('NAMESPACE_MOVED', `This collection's images were moved to another machine; they are not served here (${name}).`, { details: { namespace: name } });
    }
    await mkdir(dir, { recursive: true });
    const stale = [...(await removeStaleTempFiles(dir)), ...(await removeStaleTempFiles(join(dir, 'vae')))];
    if (stale.length > 0) log.info(`namespace ${name}: removed ${stale.length} temporary files an interrupted write left (${stale.join(', ')})`);
    const store = await FeatureStore.open(join(dir, 'store.sqlite'));
    let key = (await store.getMeta<ActiveKey>('activeKey')) ?? { kind: 'raw' };
    let vae: VaeModel | undefined;
    if (key.kind === 'vae') {
      try {
        vae = await loadVae(vaeDir(dir, key.vaeId));
      } catch (error) {
        log.error(`namespace ${name}: its VAE ${key.vaeId} cannot be loaded (${errorText(error)}); answering with raw features until it retrains`);
        key = { kind: 'raw' };
      }
    }
    const index = await loadIndex(dir, name, store, key, vae ? vae.meta.latentDim : featureDim, log);
    // White measured better than the model's grey on both development sets (docs/relevance.md, Preprocessing),
    // but stored features must stay comparable with new ones: a namespace that already held images keeps grey.
    let background = await store.getMeta<Background>('background');
    if (background === undefined) {
      background = (await store.count()) === 0 ? 'white' : 'grey';
      await store.setMeta('background', background);
    }
    const ns = new Namespace(name, dir, store, key, vae, index, log, background);
    ns.watchGraph(index);
    // A saved index that recorded the store's next id and holds as many images as the store has seen no
    // change since: listing every stored id (seconds at 1M) is only needed after a crash or a rebuild.
    const inSync = index.storeNextId !== undefined && index.storeNextId === (await store.nextId()) && index.size === (await store.count());
    if (!inSync) {
      await ns.reconcile();
      // Saved even when nothing differed, so that the next start finds the store's next id in the manifest.
      ns.scheduleSave();
    }
    return ns;
  }

  get key(): ActiveKey {
    return this.activeKey;
  }

  get model(): VaeModel | undefined {
    return this.vae;
  }

  get indexSize(): number {
    return this.index.size;
  }

  /** The index key of one image: its raw features, or the VAE mean μ once the namespace has a VAE. */
  encode(features: Float32Array): Float32Array {
    return this.vae ? this.vae.encode(features, 1) : features;
  }

  addToIndex(id: number, features: Float32Array): void {
    this.index.add(id, this.encode(features));
    this.scheduleSave();
  }

  removeFromIndex(id: number): void {
    if (this.index.remove(id)) this.scheduleSave();
  }

  /** The mean direction of the index's keys (see VectorIndex.centre). */
  keyCentre(): Float32Array {
    return this.index.centre();
  }

  search(key: Float32Array, k: number, exclude?: number) {
    return this.index.search(key, k, exclude);
  }

  /** Switches to a retrained VAE and its fully built index; the store's activeKey commit is the switch. */
  async activate(vae: VaeModel, index: VectorIndex): Promise<void> {
    const key: ActiveKey = { kind: 'vae', vaeId: vae.meta.id };
    // A retrain's index was saved by its builder; written again only if it or the store moved on since.
    const nextId = await this.store.nextId();
    if (!index.matchesFiles(nextId)) await index.save(this.dir, { storeNextId: nextId });
    await this.store.setMeta('activeKey', key);
    this.clearSaveTimer();
    this.activeKey = key;
    this.vae = vae;
    this.index = index;
    this.dirty = false;
    this.watchGraph(index);
    await removeOtherIndexFiles(this.dir, keyIdOf(key));
    await this.removeUnusedVaes();
  }

  /** Makes the index hold exactly the stored ids (adds what a crash left out, drops what the store no longer has). */
  async reconcile(): Promise<{ added: number; dropped: number }> {
    const stored = new Set(await this.store.ids());
    const added = await fillIndex(this.index, this.store, stored, (f) => this.encode(f));
    let dropped = 0;
    for (const id of this.index.ids()) {
      if (stored.has(id)) continue;
      this.index.remove(id);
      dropped += 1;
    }
    if (added > 0 || dropped > 0) {
      this.log.info(`namespace ${this.name}: index reconciled with the store (${added} added, ${dropped} dropped)`);
      // Scheduled, not awaited: a save waits for the graph, which a large index is still reading.
      this.scheduleSave();
    }
    return { added, dropped };
  }

  async save(): Promise<void> {
    this.clearSaveTimer();
    this.dirty = false;
    const index = this.index;
    // Waiting for a graph that is still loading must not hold the write lock (ingestion would stall meanwhile).
    await index.ready();
    // hnswlib writes the file on another thread: an add or remove meanwhile yields a file that matches its
    // checksum yet cannot be read. Every change to the index happens under the store's write lock, so does this.
    await this.store.exclusive(async () => index.save(this.dir, { storeNextId: await this.store.nextId() }));
  }

  /** Resolves when the index answers from its graph (it answers from exact search until then). */
  async ready(): Promise<void> {
    await this.index.ready();
  }

  /** Logs how the graph of a loaded index arrived; a rebuilt one is saved so the next start reads it. */
  private watchGraph(index: VectorIndex): void {
    void index.ready().then((status) => {
      if (status.state !== 'rebuilt' || index !== this.index) return;
      this.log.warn(`namespace ${this.name}: ${status.reason}; rebuilt the search graph from the index's vectors`);
      this.dirty = true;
      this.scheduleSave();
    });
  }

  async close(): Promise<void> {
    if (this.dirty) await this.save();
    this.clearSaveTimer();
    await this.store.close();
  }

  private scheduleSave(): void {
    this.dirty = true;
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.save().catch((error) => this.log.error(`namespace ${this.name}: saving the index failed: ${errorText(error)}`));
    }, SAVE_DELAY_MS);
    this.saveTimer.unref();
  }

  private clearSaveTimer(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
  }

  private async removeUnusedVaes(): Promise<void> {
    const keep = this.activeKey.kind === 'vae' ? this.activeKey.vaeId : undefined;
    const entries = await readdir(join(this.dir, 'vae')).catch(() => [] as string[]);
    for (const entry of entries) if (entry !== keep) await rm(join(this.dir, 'vae', entry), { recursive: true, force: true });
  }
}

/**
 * Adds the stored images in `ids` that `index` lacks; returns how many. An empty index (rebuilt) is filled by one
 * sequential scan, otherwise only the missing records are read.
 */
export async function fillIndex(
  index: VectorIndex,
  store: FeatureStore,
  ids: Set<number>,
  encode: (features: Float32Array) => Float32Array,
): Promise<number> {
  let added = 0;
  if (index.size === 0) {
    for await (const image of store.scan()) {
      if (!ids.has(image.id)) continue;
      index.add(image.id, encode(image.features));
      added += 1;
    }
    return added;
  }
  for (const id of ids) {
    if (index.has(id)) continue;
    const image = await store.get(id);
    if (!image) continue;
    index.add(id, encode(image.features));
    added += 1;
  }
  return added;
}

/** The saved index for this key, or an empty one (that `reconcile` fills from the store) when none verifies. */
async function loadIndex(
  dir: string,
  name: string,
  store: FeatureStore,
  key: ActiveKey,
  dim: number,
  log: Logger,
): Promise<VectorIndex> {
  const keyId = keyIdOf(key);
  try {
    const loaded = await VectorIndex.load(dir, keyId);
    if (loaded && loaded.dim === dim) return loaded;
    if (loaded) log.warn(`namespace ${name}: the index has ${loaded.dim} dimensions, expected ${dim}; rebuilding it from the store`);
  } catch (error) {
    if (!isAppError(error, 'INDEX_CORRUPT')) throw error;
    log.warn(`namespace ${name}: ${error.message} Rebuilding it from the store.`);
    await removeIndexFiles(dir, keyId);
  }
  return VectorIndex.create(keyId, dim, (await store.count()) + 1024);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
