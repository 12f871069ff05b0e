import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError, isAppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Background } from '../ml/image.js';
import { isLinearKeyId } from '../ml/linear-key.js';
import { loadVae } from '../ml/vae-files.js';
import type { VaeModel } from '../ml/vae-model.js';
import { randomBytes } from 'node:crypto';
import { FeatureStore, type StoredImage } from './store.js';
import { removeStaleTempFiles } from '../util/atomic-file.js';
import { loadStyle, posterOf, saveStyle, styled, styleFileName, StyleFit, STYLE_MAX_IMAGES, type StyleOffsets } from './style-key.js';
import { expired, TRIAL_DAYS, type TrialState } from './style-trial.js';
import { VectorIndex, removeIndexFiles, removeOtherIndexFiles, type Neighbour } from './vector-index.js';

/**
 * Which vectors the index is keyed on: the raw MobileNetV2 features until the namespace has its own VAE (or PCA
 * key); `style` names the poster offsets taken out of them once a style trial was adopted (style-key.ts).
 */
export type ActiveKey = ({ kind: 'raw' } | { kind: 'vae'; vaeId: string }) & { style?: string };

export const RAW_KEY_ID = 'raw';
const SAVE_DELAY_MS = 2_000;
/** Graph inserts between two turns of the event loop when an index is filled on the main thread. */
const YIELD_EVERY = 128;

/** A linear key is kept in the VAE's format (linear-key.ts) but named for what it is: `pca64-…`, `lw96-…`; a style key adds `+style-…`. */
export function keyIdOf(key: ActiveKey): string {
  const base = key.kind === 'raw' ? RAW_KEY_ID : isLinearKeyId(key.vaeId) ? key.vaeId : `vae-${key.vaeId}`;
  return key.style === undefined ? base : `${base}+style-${key.style}`;
}

/** One key space the namespace answers from: how an image is keyed in it, and its index. */
export interface KeySpace {
  id: string;
  key(features: Float32Array, poster: string | undefined): Float32Array;
  search(key: Float32Array, k: number, exclude?: number): Neighbour[];
  /** The mean direction of the index's keys (see VectorIndex.centre). */
  centre(): Float32Array;
  readonly size: number;
}

/** A style key being tried against the current key (style-trial.ts): its offsets and its own index. */
interface Trial {
  state: TrialState;
  style: StyleOffsets;
  index: VectorIndex;
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
  private trial: Trial | undefined;

  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly store: FeatureStore,
    private activeKey: ActiveKey,
    private vae: VaeModel | undefined,
    /** The poster offsets of the active key, when it is a style key. */
    private style: StyleOffsets | undefined,
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
    let style: StyleOffsets | undefined;
    if (key.style !== undefined) {
      try {
        style = await loadStyle(dir, key.style);
      } catch (error) {
        log.error(`namespace ${name}: ${errorText(error)} Answering without it until the next retrain.`);
        key = withoutStyle(key);
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
    const ns = new Namespace(name, dir, store, key, vae, style, index, log, background);
    ns.watchGraph(index);
    // Only an index the store moved on from (a crash, a rebuild) is reconciled.
    if (!(await inSyncWith(index, store))) {
      await ns.reconcile();
      // Saved even when nothing differed, so that the next start finds the store's next id in the manifest.
      ns.scheduleSave();
    }
    await ns.resumeTrial();
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

  /** The base key of one image: its raw features, or the VAE mean μ once the namespace has a VAE (no style taken out). */
  encode(features: Float32Array): Float32Array {
    return this.vae ? this.vae.encode(features, 1) : features;
  }

  /** The key space answers come from. */
  current(): KeySpace {
    return this.space(keyIdOf(this.activeKey), this.style, this.index);
  }

  /** The style key on trial, when one is (its answers are interleaved with the current key's). */
  candidate(): KeySpace | undefined {
    return this.trial && this.space(this.trial.state.candidate, this.trial.style, this.trial.index);
  }

  get trialState(): TrialState | undefined {
    return this.trial?.state;
  }

  addToIndex(id: number, features: Float32Array, poster: string | undefined): void {
    // Encoded once: a running trial keys the same base key with its own offsets.
    const base = this.encode(features);
    this.index.add(id, withStyle(base, poster, this.style));
    if (this.trial) this.trial.index.add(id, withStyle(base, poster, this.trial.style));
    this.scheduleSave();
  }

  removeFromIndex(id: number): void {
    this.trial?.index.remove(id);
    if (this.index.remove(id)) this.scheduleSave();
  }

  /**
   * Switches to a retrained VAE and its built index (answering from its flat vectors until its graph is read); the
   * store's activeKey commit is the switch. A trial ends with it. Called under the store's lock.
   */
  async activate(vae: VaeModel, index: VectorIndex): Promise<void> {
    await this.dropTrial();
    const key: ActiveKey = { kind: 'vae', vaeId: vae.meta.id };
    const previous = this.index;
    await this.store.setMeta('activeKey', key);
    this.clearSaveTimer();
    this.activeKey = key;
    this.vae = vae;
    this.style = undefined;
    this.index = index;
    this.dirty = false;
    this.watchGraph(index);
    // A retrain's index was saved by its builder. One that changed since (images added or removed while it was
    // built) is saved like any change, later and outside the lock: saving waits for its graph, which is still
    // being read. A crash before then leaves files older than the store, which the next open reconciles.
    if (!index.matchesFiles(await this.store.nextId())) this.scheduleSave();
    // The replaced graph is freed at once rather than whenever V8 collects it: both at 1M would be ≈ 1 GB.
    if (previous !== index) previous.release();
    await removeOtherIndexFiles(this.dir, keyIdOf(key));
    await this.removeUnusedVaes();
    await this.removeUnusedStyles();
  }

  /**
   * Fits poster offsets on the current key and builds the style key's index from the store (on this thread,
   * between store pages). Undefined when the posters are too few to try one (STYLE_MIN_POSTERS).
   */
  async fitStyle(): Promise<{ style: StyleOffsets; index: VectorIndex } | undefined> {
    const base = withoutStyle(this.activeKey);
    const fit = new StyleFit(this.vae ? this.vae.meta.latentDim : this.index.dim);
    for await (const image of this.store.scan()) fit.add(posterOf(image), this.encode(image.features));
    if (!fit.enough()) return undefined;
    const style = fit.finish(randomBytes(4).toString('hex'));
    const index = VectorIndex.create(keyIdOf({ ...base, style: style.id }), style.dim, (await this.store.count()) + 1024);
    // Images that come or go meanwhile are brought over by startTrial, under the store's lock.
    await fillIndex(index, this.store, new Set(await this.store.ids()), this.imageKey(style));
    return { style, index };
  }

  /** Starts a style trial on the current key (ending any running one). False when the posters are too few. */
  async startTrial(): Promise<boolean> {
    await this.endTrial();
    if (this.style || (await this.store.count()) > STYLE_MAX_IMAGES) return false;
    const fitted = await this.fitStyle();
    if (!fitted) return false;
    await saveStyle(this.dir, fitted.style);
    const state: TrialState = { candidate: fitted.index.keyId, current: keyIdOf(this.activeKey), started: new Date().toISOString() };
    await this.store.exclusive(async () => {
      // Images indexed or removed while the fit read the store, under the lock every index change takes.
      await syncIndex(fitted.index, this.store, this.imageKey(fitted.style));
      await this.store.setMeta('styleTrial', state);
      this.trial = { state, style: fitted.style, index: fitted.index };
    });
    this.scheduleSave();
    this.log.info(`namespace ${this.name}: trying the style key ${state.candidate} against ${state.current}`);
    return true;
  }

  /**
   * The trial's candidate becomes the active key: its index is saved, the activeKey commit is the switch. Given the
   * trial that was decided, a trial that ended or changed meanwhile (two judgements deciding at once) is left alone.
   */
  async adoptTrial(decided?: TrialState): Promise<void> {
    const trial = this.trial;
    if (!trial || (decided && trial.state !== decided)) return;
    const key: ActiveKey = { ...withoutStyle(this.activeKey), style: trial.style.id };
    const adopted = await this.store.exclusive(async () => {
      if (this.trial !== trial) return false;
      await trial.index.save(this.dir, { storeNextId: await this.store.nextId() });
      await this.store.setMeta('activeKey', key);
      await this.store.deleteMeta('styleTrial');
      this.clearSaveTimer();
      this.trial = undefined;
      this.activeKey = key;
      this.style = trial.style;
      this.index = trial.index;
      this.dirty = false;
      return true;
    });
    if (!adopted) return;
    this.watchGraph(trial.index);
    await removeOtherIndexFiles(this.dir, keyIdOf(key));
    await this.removeUnusedStyles();
    this.log.info(`namespace ${this.name}: the askers preferred the style key; now keyed on ${keyIdOf(key)}`);
  }

  /**
   * Forgets a poster's style (/forget-me): their offset is a mean of their images' features. Their images are
   * removed by the caller; images of theirs that remain (none, after /forget-me) would keep their style.
   */
  async forgetPoster(poster: string): Promise<void> {
    for (const style of [this.style, this.trial?.style]) {
      if (style?.offsets.delete(poster)) await saveStyle(this.dir, style);
    }
  }

  /** Ends a running trial without adopting it (given one, only that trial). */
  async endTrial(decided?: TrialState): Promise<void> {
    // Under the lock: a save of the trial's index may be writing its files.
    await this.store.exclusive(async () => {
      if (decided && this.trial?.state !== decided) return;
      await this.dropTrial();
    });
  }

  /** Forgets the running trial, its state and its files (the caller holds the store's lock). */
  private async dropTrial(): Promise<void> {
    const state = this.trial?.state ?? (await this.store.getMeta<TrialState>('styleTrial'));
    if (!state) return;
    this.trial = undefined;
    await this.store.deleteMeta('styleTrial');
    await removeIndexFiles(this.dir, state.candidate);
    await this.removeUnusedStyles();
  }

  /** Ends the trial if it ran undecided for longer than TRIAL_DAYS (called before each answer). */
  async expireTrial(): Promise<void> {
    const state = this.trial?.state;
    if (!state || !expired(state)) return;
    await this.endTrial(state);
    this.log.info(`namespace ${this.name}: the style key ${state.candidate} was not decided in ${TRIAL_DAYS} days; kept ${state.current}`);
  }

  /** A trial that was running when the namespace closed goes on, from its saved index when that still holds it. */
  private async resumeTrial(): Promise<void> {
    const state = await this.store.getMeta<TrialState>('styleTrial');
    if (!state) return;
    const styleId = /\+style-([0-9a-f]+)$/.exec(state.candidate)?.[1];
    if (state.current !== keyIdOf(this.activeKey) || styleId === undefined) {
      await this.endTrial();
      return;
    }
    try {
      const style = await loadStyle(this.dir, styleId);
      const saved = await VectorIndex.load(this.dir, state.candidate).catch(() => null);
      const index = saved && saved.dim === style.dim ? saved : VectorIndex.create(state.candidate, style.dim, (await this.store.count()) + 1024);
      if (index !== saved || !(await inSyncWith(index, this.store))) await this.store.exclusive(() => syncIndex(index, this.store, this.imageKey(style)));
      this.trial = { state, style, index };
      this.log.info(`namespace ${this.name}: the style trial of ${state.candidate} goes on${index === saved ? ' from its saved index' : ', its index rebuilt from the store'}`);
    } catch (error) {
      this.log.warn(`namespace ${this.name}: the style trial cannot go on (${errorText(error)}); ended`);
      await this.endTrial();
    }
  }

  /** How a stored image is keyed under `style` (none: the base key). */
  private imageKey(style: StyleOffsets | undefined): (image: StoredImage) => Float32Array {
    return (image) => withStyle(this.encode(image.features), posterOf(image), style);
  }

  private space(id: string, style: StyleOffsets | undefined, index: VectorIndex): KeySpace {
    return {
      id,
      key: (features, poster) => withStyle(this.encode(features), poster, style),
      search: (key, k, exclude) => index.search(key, k, exclude),
      centre: () => index.centre(),
      get size() {
        return index.size;
      },
    };
  }

  /** Makes the index hold exactly the stored ids (adds what a crash left out, drops what the store no longer has). */
  async reconcile(): Promise<{ added: number; dropped: number }> {
    const stored = new Set(await this.store.ids());
    const added = await fillIndex(this.index, this.store, stored, this.imageKey(this.style));
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
    const trial = this.trial;
    if (trial) await trial.index.ready();
    await this.store.exclusive(async () => {
      const storeNextId = await this.store.nextId();
      await index.save(this.dir, { storeNextId });
      // A running trial's index is saved beside it, so that a restart resumes the trial without rebuilding it.
      if (trial && this.trial === trial) await trial.index.save(this.dir, { storeNextId });
    });
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

  /** Removes the offsets of style keys neither active nor on trial. */
  private async removeUnusedStyles(): Promise<void> {
    const keep = new Set([this.style?.id, this.trial?.style.id].filter((id): id is string => id !== undefined).map(styleFileName));
    for (const entry of await readdir(this.dir)) {
      if (entry.startsWith('style-') && !keep.has(entry)) await rm(join(this.dir, entry), { force: true });
    }
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
/** Makes an index built from the store hold exactly the stored ids again (callers hold the store's lock). */
export async function syncIndex(index: VectorIndex, store: FeatureStore, encode: (image: StoredImage) => Float32Array): Promise<void> {
  const stored = new Set(await store.ids());
  await fillIndex(index, store, stored, encode);
  for (const id of index.ids()) if (!stored.has(id)) index.remove(id);
}

export async function fillIndex(
  index: VectorIndex,
  store: FeatureStore,
  ids: Set<number>,
  encode: (image: StoredImage) => Float32Array,
): Promise<number> {
  let added = 0;
  if (index.size === 0) {
    for await (const image of store.scan()) {
      if (!ids.has(image.id)) continue;
      index.add(image.id, encode(image));
      added += 1;
      // Queries answer between batches of inserts rather than after a whole store page (500 inserts) of them.
      if (added % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    return added;
  }
  for (const id of ids) {
    if (index.has(id)) continue;
    const image = await store.get(id);
    if (!image) continue;
    index.add(id, encode(image));
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

/**
 * Whether a saved index still holds exactly the store: it recorded the store's next id and holds as many images as
 * the store has (listing every stored id, seconds at 1M, is needed only when not).
 */
async function inSyncWith(index: VectorIndex, store: FeatureStore): Promise<boolean> {
  return index.storeNextId !== undefined && index.storeNextId === (await store.nextId()) && index.size === (await store.count());
}

/** A base key with its poster's style taken out (none without a style; a poster not fitted is not moved). */
function withStyle(base: Float32Array, poster: string | undefined, style: StyleOffsets | undefined): Float32Array {
  return style ? styled(base, style.offsets.get(poster ?? '')) : base;
}

function withoutStyle(key: ActiveKey): ActiveKey {
  const { style: _style, ...base } = key;
  return base as ActiveKey;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
