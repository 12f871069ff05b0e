import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { createImagePipeline } from '../ml/pipeline.js';
import type { VaeHyperParams } from '../ml/vae-hyper.js';
import { sha256 } from '../util/atomic-file.js';
import { keyIdOf, type ActiveKey } from './active-key.js';
import { answerSearch } from './answer-search.js';
import type { Feedback } from './feedback.js';
import type { FeedbackStore, Judgement } from './feedback-store.js';
import type { KeyRule } from './key-signals.js';
import { namespaceDir, validateNamespaceName, type Namespace } from './namespace.js';
import { NamespaceCache } from './namespace-cache.js';
import { indexImage, type IndexMeta, type IndexResult } from './index-image.js';
import { findNearDuplicates, REPOST_THRESHOLD, type NearDuplicate } from './near-duplicates.js';
import { imageSize } from './thumbnail-match.js';
import type { Hit } from './filtered-search.js';
import { removeReferences, selectViews, type RemovedReference } from './references.js';
import type { RetrainProgress, RetrainSummary } from './retrain.js';
import { RetrainRuns, type AutoRetrainEvent } from './retrain-runs.js';
import { referenceViews, type ImageRecord, type ImageReference, type StoredImage } from './store.js';
import { posterOf } from './style-key.js';
import { decide, tally, type TrialDecision, type TrialTally } from './style-trial.js';
import { indexFileBytes } from './vector-index.js';

export const DEFAULT_NAMESPACE = 'local';
export const DEFAULT_K = 20;
export interface EngineOptions {
  dataDir: string;
  logger?: Logger;
  /** onnxruntime threads for feature extraction. */
  threads?: number;
  maxInputBytes?: number;
  maxInputPixels?: number;
  /** A retrain is due once a namespace holds `minImages`, and again when it has grown by `growth`×. */
  retrainPolicy?: { minImages: number; growth: number } | false;
  /**
   * Start a due retrain in the background after indexing (the bot, where admins can switch it off per
   * namespace); the CLI runs it in the foreground instead.
   */
  autoRetrain?: boolean | ((namespace: string) => boolean | Promise<boolean>);
  /** Told when an automatic retrain starts and ends, so the bot can post a short notice. */
  onAutoRetrain?: (event: AutoRetrainEvent) => void;
  /** Keep a small WebP per image for overviews (default true). */
  thumbnails?: boolean;
  /**
   * Start the feature model at once instead of at the first image: a serving process (the bot) then answers its
   * first query without waiting for onnxruntime to load the model (~1 s), which overlaps opening the index.
   */
  preloadModel?: boolean;
  vaeHyper?: Partial<VaeHyperParams>;
  /**
   * The retrain quality check's thresholds (key-signals.ts KEY_RULE, validated in docs/relevance.md). For tests on
   * small artificial collections, where every image has edited siblings, and for evaluations.
   */
  keyRule?: Partial<KeyRule>;
}

export type { AutoRetrainEvent };

export type { IndexMeta, IndexResult } from './index-image.js';
export type { RemovedReference };

export interface QueryOptions {
  namespace?: string;
  k?: number;
  /**
   * Decides per candidate whether the caller may see it (the bot checks channel permissions here). It is asked about
   * the candidate seen through each of its references in turn, and the hit is the first view it accepts.
   */
  filter?: (record: ImageRecord) => boolean | Promise<boolean>;
  /** Judged results of an earlier answer to this query: the query's key is moved by Rocchio (feedback.ts). */
  feedback?: Feedback;
  /** The coin of a style trial's interleaving (evaluations); Math.random by default. */
  random?: () => number;
  /**
   * While a style trial runs, answers are interleaved from the current key and the candidate; evaluations measure
   * each key on its own with `current` or `candidate`. Without a trial every answer is the current key's.
   */
  keys?: 'interleaved' | 'current' | 'candidate';
}

export interface QueryResult {
  hits: Hit[];
  /** The index key the answer came from: `raw` or `vae-<id>`. */
  key: string;
  /** The stored image the query was, when it was one (it is never among the hits). */
  self?: ImageRecord;
  /**
   * A small WebP of the query image: the stored one, or made from the decoded query (so a reply need not decode
   * the upload a second time). Absent when thumbnails are off.
   */
  thumbnail?: Buffer;
  /** The query's features, so that a later query with feedback can start from a query that was never stored. */
  features: Float32Array;
}

export interface NamespaceStats {
  namespace: string;
  images: number;
  indexed: number;
  key: string;
  featureModel: string;
  vae?: { id: string; created: string; trainingSize: number; activeUnits: number; latentDim: number };
  indexBytes: number;
  storeBytes: number;
  retrainDue: boolean;
  /** A style key on trial: its id, since when, and how the judged answers went so far. */
  trial?: { candidate: string; started: string } & TrialTally;
}

export interface Engine {
  index(bytes: Uint8Array, meta: IndexMeta): Promise<IndexResult>;
  query(input: Uint8Array | { id: number } | { features: Float32Array }, options?: QueryOptions): Promise<QueryResult>;
  /**
   * The earlier posts of the same picture, most similar first, each accepted by `filter`, at most `limit` (10):
   * candidates by raw-feature cosine, confirmed on the two thumbnails (near-duplicates.ts); without thumbnails, raw
   * cosine at least `threshold` (default REPOST_THRESHOLD). Identical bytes count (score 1): when the input is
   * stored, its own posts are among them.
   */
  nearDuplicates(input: Uint8Array | { id: number }, options?: { namespace?: string; threshold?: number; limit?: number; filter?: QueryOptions['filter'] }): Promise<NearDuplicate[]>;
  remove(id: number, options?: { namespace?: string }): Promise<ImageRecord | undefined>;
  get(id: number, options?: { namespace?: string }): Promise<ImageRecord | undefined>;
  thumbnail(id: number, options?: { namespace?: string }): Promise<Buffer | undefined>;
  /**
   * Removes the references stored under `ref` (those `where` picks, seen as the image through each; all by
   * default); an image goes with its last reference. Returns the removed references.
   */
  removeByRef(ref: string, options?: { namespace?: string; where?: (view: ImageRecord) => boolean }): Promise<RemovedReference[]>;
  /**
   * Removes every reference the predicate picks (it sees the image through each reference in turn; a full scan: for
   * rare events such as a deleted channel); an image goes with its last reference.
   */
  removeWhere(predicate: (view: ImageRecord) => boolean, options?: { namespace?: string }): Promise<RemovedReference[]>;
  /** Every reference of the namespace, each seen as its image through it (a full scan, for start-up checks). */
  references(options?: { namespace?: string }): AsyncGenerator<ImageRecord>;
  /** The references stored under `ref`, each seen as its image through it. */
  findByRef(ref: string, options?: { namespace?: string }): Promise<ImageRecord[]>;
  /** Deletes a namespace and everything in it (the bot was removed from a guild). */
  dropNamespace(namespace: string): Promise<void>;
  /** Trains a candidate VAE; it replaces the current key only if the quality gate accepts it, or with `force`. */
  retrain(options?: { namespace?: string; onProgress?: (p: RetrainProgress) => void; signal?: AbortSignal; force?: boolean }): Promise<RetrainSummary>;
  /** Resolves when any retrain started automatically for this namespace has finished (or at once). */
  settled(namespace?: string): Promise<void>;
  /**
   * Resolves when the namespace's index answers from its HNSW graph. Until then (seconds after opening a large
   * index) queries are answered by exact search, so nothing needs to wait for this but measurements.
   */
  ready(namespace?: string): Promise<void>;
  stats(namespace?: string): Promise<NamespaceStats>;
  /** The namespace's relevance feedback: judgements are removed with the images they name. */
  feedback(namespace?: string): Promise<FeedbackStore>;
  /**
   * Stores a judgement (false when an image it names is gone) and, while a style trial runs, counts it: once the
   * trial is decided the candidate becomes the key or is dropped (style-trial.ts).
   */
  judge(judgement: Judgement, options?: { namespace?: string }): Promise<{ stored: boolean; trial?: TrialDecision }>;
  /** Forgets what the namespace's style key learned from one poster (/forget-me; their images go by `removeWhere`). */
  forgetPoster(poster: string, options?: { namespace?: string }): Promise<void>;
  namespaces(): Promise<string[]>;
  close(): Promise<void>;
}

export function createEngine(options: EngineOptions): Engine {
  const log = options.logger ?? silentLogger;
  const pipeline = createImagePipeline(options);
  const open = new NamespaceCache(options.dataDir, pipeline.featureDim, log);
  const namespace = (name = DEFAULT_NAMESPACE): Promise<Namespace> => open.get(name);

  async function removeIds(ns: Namespace, ids: number[]): Promise<ImageRecord[]> {
    return ns.store.exclusive(async () => {
      const removed: ImageRecord[] = [];
      for (const id of ids) {
        const record = await ns.store.delete(id);
        ns.removeFromIndex(id);
        if (record) removed.push(record);
      }
      return removed;
    });
  }

  const retrains = new RetrainRuns({
    log,
    namespace,
    policy: options.retrainPolicy,
    autoRetrain: options.autoRetrain,
    onAutoRetrain: options.onAutoRetrain,
    context: (ns) => {
      const extract = async (bytes: Uint8Array) => (await pipeline.process(bytes, ns.background)).features;
      return { featureDim: pipeline.featureDim(), log, vaeHyper: options.vaeHyper, keyRule: options.keyRule, extract: options.thumbnails === false ? undefined : extract };
    },
  });

  /** The raw features of a query: the stored image's (`self`) when it is one, else decoded (with a thumbnail). */
  async function queryVector(ns: Namespace, input: Uint8Array | { id: number } | { features: Float32Array }): Promise<{ self?: StoredImage; vector: Float32Array; decodedThumbnail?: Buffer }> {
    if ('features' in input) return { vector: input.features };
    const known = input instanceof Uint8Array ? await ns.store.findBySha(sha256(input)) : input.id;
    const stored = known === undefined ? undefined : await ns.store.get(known);
    if (stored) return { self: stored, vector: stored.features };
    if (!(input instanceof Uint8Array)) throw new AppError('NOT_FOUND', `There is no image with id ${input.id}.`);
    const decoded = await pipeline.process(input, ns.background, true);
    return { vector: decoded.features, decodedThumbnail: decoded.thumbnail };
  }

  return {
    async index(bytes, meta) {
      const name = meta.namespace ?? DEFAULT_NAMESPACE;
      const ns = await namespace(name);
      const result = await indexImage(ns, pipeline, bytes, meta);
      if (result.status === 'indexed') await retrains.afterIndexed(ns);
      return result;
    },

    async query(input, queryOptions = {}) {
      const ns = await namespace(queryOptions.namespace);
      const k = Math.max(1, Math.min(queryOptions.k ?? DEFAULT_K, 100));
      await ns.expireTrial();
      const { self, vector, decodedThumbnail } = await queryVector(ns, input);
      let thumbnail = decodedThumbnail;
      const hits = await answerSearch(ns, {
        features: vector,
        // An upload's poster is not known (the asker may be showing someone else's art): its style stays in.
        poster: self && posterOf(self),
        k,
        exclude: self?.id,
        filter: queryOptions.filter,
        feedback: queryOptions.feedback,
        random: queryOptions.random,
        keys: queryOptions.keys,
      });
      if (self && options.thumbnails !== false) thumbnail = await ns.store.getThumbnail(self.id);
      return { hits, key: keyIdOf(ns.key), self: self && stripFeatures(self), thumbnail, features: vector };
    },

    async nearDuplicates(input, nearOptions = {}) {
      const ns = await namespace(nearOptions.namespace);
      const { self, vector, decodedThumbnail } = await queryVector(ns, input);
      // The input's thumbnail for the second stage: a stored image's own, else the one made while decoding the upload.
      const selfThumbnail = self && (await ns.store.getThumbnail(self.id));
      const size = self ?? (input instanceof Uint8Array && decodedThumbnail ? await imageSize(input) : undefined);
      const bytes = selfThumbnail ?? decodedThumbnail;
      return findNearDuplicates(ns, vector, {
        thumbnail: bytes && size ? { bytes, width: size.width, height: size.height } : undefined,
        threshold: nearOptions.threshold ?? REPOST_THRESHOLD,
        limit: Math.max(1, Math.min(nearOptions.limit ?? 10, 100)),
        self: self?.id,
        poster: self && posterOf(self),
        filter: nearOptions.filter,
      });
    },

    async remove(id, removeOptions = {}) {
      const ns = await namespace(removeOptions.namespace);
      return (await removeIds(ns, [id]))[0];
    },

    async removeByRef(ref, refOptions = {}) {
      const ns = await namespace(refOptions.namespace);
      const selections = new Map<number, (reference: ImageReference) => boolean>();
      for (const record of (await ns.store.getRecords(await ns.store.idsByRef(ref))).values()) {
        const select = selectViews(record, (view) => view.ref === ref && (refOptions.where?.(view) ?? true));
        if (select) selections.set(record.id, select);
      }
      return removeReferences(ns, selections);
    },

    async removeWhere(predicate, whereOptions = {}) {
      const ns = await namespace(whereOptions.namespace);
      const selections = new Map<number, (reference: ImageReference) => boolean>();
      for await (const record of ns.store.records()) {
        const select = selectViews(record, predicate);
        if (select) selections.set(record.id, select);
      }
      return removeReferences(ns, selections);
    },

    async *references(referenceOptions = {}) {
      const ns = await namespace(referenceOptions.namespace);
      for await (const record of ns.store.records()) yield* referenceViews(record);
    },

    async findByRef(ref, refOptions = {}) {
      const ns = await namespace(refOptions.namespace);
      const records = await ns.store.getRecords(await ns.store.idsByRef(ref));
      return [...records.values()].flatMap((record) => referenceViews(record).filter((view) => view.ref === ref));
    },

    async dropNamespace(name) {
      validateNamespaceName(name);
      await retrains.stop(name);
      await open.close(name);
      await rm(namespaceDir(options.dataDir, name), { recursive: true, force: true });
      log.info(`namespace ${name}: dropped`);
    },

    async thumbnail(id, thumbnailOptions = {}) {
      const ns = await namespace(thumbnailOptions.namespace);
      return ns.store.getThumbnail(id);
    },

    async get(id, getOptions = {}) {
      const ns = await namespace(getOptions.namespace);
      const stored = await ns.store.get(id);
      return stored && stripFeatures(stored);
    },

    retrain(retrainOptions = {}) {
      const name = retrainOptions.namespace ?? DEFAULT_NAMESPACE;
      try {
        validateNamespaceName(name);
        return retrains.start(name, retrainOptions.onProgress, retrainOptions.signal, retrainOptions.force);
      } catch (error) {
        return Promise.reject(error);
      }
    },

    async ready(name = DEFAULT_NAMESPACE) {
      await (await namespace(name)).ready();
    },

    async settled(name = DEFAULT_NAMESPACE) {
      await retrains.settled(name);
    },

    async stats(name = DEFAULT_NAMESPACE) {
      const ns = await namespace(name);
      const vae = ns.model?.meta;
      const key = keyIdOf(ns.key);
      return {
        namespace: name,
        images: await ns.store.count(),
        indexed: ns.indexSize,
        key,
        featureModel: pipeline.modelVersion(),
        vae: vae && { id: vae.id, created: vae.created, trainingSize: vae.trainingSize, activeUnits: vae.activeUnits, latentDim: vae.latentDim },
        indexBytes: await indexFileBytes(ns.dir, key),
        storeBytes: await fileBytes(join(ns.dir, 'store.sqlite')),
        retrainDue: await retrains.due(ns),
        trial: ns.trialState && { candidate: ns.trialState.candidate, started: ns.trialState.started, ...tally(ns.trialState, await ns.store.feedback.all()) },
      };
    },

    async feedback(name = DEFAULT_NAMESPACE) {
      return (await namespace(name)).store.feedback;
    },

    async forgetPoster(poster, forgetOptions = {}) {
      await (await namespace(forgetOptions.namespace)).forgetPoster(poster);
    },

    async judge(judgement, judgeOptions = {}) {
      const ns = await namespace(judgeOptions.namespace);
      if (!(await ns.store.feedback.record(judgement))) return { stored: false };
      const trial = ns.trialState;
      if (!trial) return { stored: true };
      const decision = decide(tally(trial, await ns.store.feedback.all()));
      if (decision === 'adopt') await ns.adoptTrial(trial);
      if (decision === 'refuse') await ns.endTrial(trial);
      return { stored: true, trial: decision };
    },

    async namespaces() {
      const entries = await readdir(join(options.dataDir, 'namespaces'), { withFileTypes: true }).catch(() => []);
      return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
    },

    async close() {
      await retrains.stopAll();
      await open.closeAll();
      await pipeline.close();
    },
  };
}

function stripFeatures(image: ImageRecord & { features?: Float32Array }): ImageRecord {
  const { features: _features, ...record } = image;
  return record;
}

async function fileBytes(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

export type { ActiveKey, Hit, NearDuplicate };
export { MIN_RETRAIN_IMAGES, type GateDecision, type RetrainProgress, type RetrainSummary } from './retrain.js';
export { REPOST_THRESHOLD };
export { TRIAL_ANSWERS } from './style-trial.js';
export { namespaceDir };
