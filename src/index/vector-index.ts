import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import hnswlib from 'hnswlib-node';
import { AppError } from '../errors.js';
import { replaceFileAtomically, sha256File, writeFileAtomically } from '../util/atomic-file.js';
import { crc32, crc32File } from '../util/crc32.js';
import { FlatVectors, type Neighbour } from './flat-vectors.js';

export type { Neighbour } from './flat-vectors.js';

const { HierarchicalNSW } = hnswlib;
type Graph = InstanceType<typeof HierarchicalNSW>;

const M = 16;
const EF_CONSTRUCTION = 200;
const MIN_EF = 100;
const INITIAL_CAPACITY = 1024;
const FORMAT = 2 as const;
/** Graph additions between turns of the event loop while a graph is rebuilt in the background. */
const REBUILD_CHUNK = 2_000;

interface FileEntry {
  file: string;
  crc32: string;
  bytes: number;
}

interface IndexManifest {
  format: typeof FORMAT;
  keyId: string;
  dim: number;
  graph: FileEntry;
  flat: FileEntry;
  live: number;
  /** The store's next id when this was saved: equal to the store's now means no image was added since. */
  storeNextId?: number;
  savedAt: string;
}

/** Format 1: one hnswlib file named after the key, deleted ids in the manifest. Still read; saved as format 2. */
interface LegacyManifest {
  format: 1;
  keyId: string;
  dim: number;
  sha256: string;
  deleted: number[];
}

export type GraphStatus = { state: 'loaded' } | { state: 'rebuilt'; reason: string };

/** A change made before the graph arrived: an addition (`revive` when the id was in the saved graph, deleted) or a removal. */
type PendingChange = { id: number; vector: Float32Array; revive: boolean } | { id: number; vector?: undefined };

function manifestPath(dir: string, keyId: string): string {
  return join(dir, `index-${keyId}.json`);
}

/** The files the saved index of this key consists of, as its manifest names them (none when there is no manifest). */
export async function indexFiles(dir: string, keyId: string): Promise<{ manifest: string; graph?: string; flat?: string }> {
  const manifest = manifestPath(dir, keyId);
  const saved = await readManifest(manifest).catch(() => undefined);
  if (!saved) return { manifest };
  if (saved.format === 1) return { manifest, graph: join(dir, `index-${keyId}.hnsw`) };
  return { manifest, graph: join(dir, saved.graph.file), flat: join(dir, saved.flat.file) };
}

async function readManifest(path: string): Promise<IndexManifest | LegacyManifest | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return JSON.parse(text) as IndexManifest | LegacyManifest;
}

function newGraph(dim: number, capacity: number): Graph {
  const graph = new HierarchicalNSW('cosine', dim);
  graph.initIndex({ maxElements: Math.max(capacity, 16), m: M, efConstruction: EF_CONSTRUCTION, randomSeed: 100 });
  graph.setEf(MIN_EF);
  return graph;
}

function addToGraph(graph: Graph, id: number, vector: Float32Array): void {
  // hnswlib reads an index saved empty back with room for nothing, and doubling nothing is nothing.
  if (graph.getCurrentCount() >= graph.getMaxElements()) graph.resizeIndex(Math.max(INITIAL_CAPACITY, graph.getMaxElements() * 2));
  graph.addPoint(Array.from(vector), id);
}

/**
 * An HNSW cosine index over integer ids, persisted as an hnswlib graph file, a flat file of the same vectors,
 * and a manifest holding both checksums. hnswlib reads a file whose body is corrupted without complaint and then
 * crashes the process on search, so a graph file is only handed to it after its checksum matches the manifest.
 *
 * A loaded index answers at once from the flat vectors (exact search) while hnswlib reads the graph on its own
 * thread; changes made meanwhile are replayed onto the graph when it arrives.
 */
export class VectorIndex {
  private graph: Graph | undefined;
  private pending: PendingChange[] = [];
  private centreCache: Float32Array | undefined;
  private changesSinceCentre = 0;
  /** False while the files last saved or loaded hold exactly this index. */
  private changedSinceFiles = true;
  private graphReady: Promise<GraphStatus>;

  private constructor(
    readonly keyId: string,
    readonly dim: number,
    private readonly flat: FlatVectors,
    graph: Graph | undefined,
  ) {
    this.graph = graph;
    this.graphReady = Promise.resolve({ state: 'loaded' });
  }

  static create(keyId: string, dim: number, capacity = INITIAL_CAPACITY): VectorIndex {
    return new VectorIndex(keyId, dim, FlatVectors.create(dim, capacity), newGraph(dim, capacity));
  }

  /**
   * Returns null when no index was saved for this key; throws INDEX_CORRUPT when one was and its vectors do not
   * verify. A graph file that does not verify is rebuilt from the vectors in the background (see `ready`).
   */
  static async load(dir: string, keyId: string): Promise<VectorIndex | null> {
    const path = manifestPath(dir, keyId);
    let manifest: IndexManifest | LegacyManifest | null;
    try {
      manifest = await readManifest(path);
    } catch (error) {
      throw new AppError('INDEX_CORRUPT', `The index manifest ${path} is unreadable.`, { cause: error });
    }
    if (!manifest) return null;
    if (manifest.keyId !== keyId || (manifest.format !== FORMAT && manifest.format !== 1)) {
      throw new AppError('INDEX_CORRUPT', `The index manifest ${path} is for another format or key.`);
    }
    if (manifest.format === 1) return VectorIndex.loadLegacy(dir, manifest);

    // A save killed between writing its files and switching the manifest left complete files nothing names.
    await removeUnnamedFiles(dir, manifest);
    const flatPath = join(dir, manifest.flat.file);
    let bytes: Buffer;
    try {
      bytes = await readFile(flatPath);
    } catch (error) {
      throw new AppError('INDEX_CORRUPT', `The index file ${flatPath} is missing.`, { cause: error });
    }
    if (crc32(bytes) !== manifest.flat.crc32) {
      throw new AppError('INDEX_CORRUPT', `The index file ${flatPath} does not match its checksum.`);
    }
    const index = new VectorIndex(keyId, manifest.dim, FlatVectors.fromBytes(bytes, manifest.dim), undefined);
    index.changedSinceFiles = false;
    index.storeNextId = manifest.storeNextId;
    index.graphReady = index.loadGraph(join(dir, manifest.graph.file), manifest.graph.crc32, index.flat.slots);
    return index;
  }

  /** True when the files saved (or loaded) for this key, recorded with the store's next id `nextId`, are this index. */
  matchesFiles(nextId: number): boolean {
    return !this.changedSinceFiles && this.storeNextId === nextId;
  }

  /** The store's next id recorded with the loaded files (see IndexManifest). */
  storeNextId: number | undefined;

  /** Resolves once the graph answers searches: read from its file, or rebuilt when that did not verify. */
  ready(): Promise<GraphStatus> {
    return this.graphReady;
  }

  get size(): number {
    return this.flat.size;
  }

  /** Live ids, in no particular order. */
  ids(): number[] {
    return [...this.flat.labels()].filter((id) => this.flat.has(id));
  }

  has(id: number): boolean {
    return this.flat.has(id);
  }

  add(id: number, vector: Float32Array): void {
    if (vector.length !== this.dim) throw new AppError('INDEX_CORRUPT', `Vector of length ${vector.length} given to a ${this.dim}-d index.`);
    if (this.flat.has(id)) return;
    const removed = this.flat.isRemoved(id);
    this.flat.add(id, vector);
    this.changesSinceCentre += 1;
    this.changedSinceFiles = true;
    if (!this.graph) this.pending.push({ id, vector: vector.slice(), revive: removed });
    // Ids are never reused, so a deleted id coming back is the same image (a removal that did not complete).
    else if (removed) this.graph.unmarkDelete(id);
    else addToGraph(this.graph, id, vector);
  }

  remove(id: number): boolean {
    if (!this.flat.remove(id)) return false;
    this.changesSinceCentre += 1;
    this.changedSinceFiles = true;
    if (this.graph) this.graph.markDelete(id);
    else this.pending.push({ id });
    return true;
  }

  /**
   * The mean of the index's unit vectors, the centre relevance feedback measures directions from. Recomputed once
   * 1 % of the index has changed since the last time (one pass over the flat vectors: ~50 ms at 1M 64-d keys).
   */
  centre(): Float32Array {
    if (!this.centreCache || this.changesSinceCentre > this.size / 100) {
      this.centreCache = this.flat.mean();
      this.changesSinceCentre = 0;
    }
    return this.centreCache;
  }

  /** The k nearest live ids, best first, never `exclude` (the query image itself). */
  search(vector: Float32Array, k: number, exclude?: number): Neighbour[] {
    if (this.size === 0 || k <= 0) return [];
    if (!this.graph) return this.flat.search(vector, k, exclude);
    // Asking for one more than needed and dropping the query image costs nothing; a filter callback would call
    // into JavaScript for every candidate hnswlib visits (a p95 of 10 ms instead of 0.3 at 1M).
    const want = Math.min(k + (exclude !== undefined && this.flat.has(exclude) ? 1 : 0), this.size);
    this.graph.setEf(Math.max(MIN_EF, want));
    const result = this.graph.searchKnn(Array.from(vector), want);
    const hits = result.neighbors.map((id, i) => ({ id, score: 1 - result.distances[i] })).filter((h) => h.id !== exclude);
    return hits.slice(0, k);
  }

  /**
   * Writes new graph and vector files, then the manifest that names them, then removes the previous files: a
   * crash at any point leaves a manifest whose files are complete.
   */
  async save(dir: string, info: { storeNextId?: number } = {}): Promise<void> {
    await this.graphReady;
    const graph = this.graph!;
    const generation = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    const graphFile = `index-${this.keyId}.${generation}.hnsw`;
    const flatFile = `index-${this.keyId}.${generation}.flat`;
    await replaceFileAtomically(join(dir, graphFile), (temp) => graph.writeIndex(temp).then(() => undefined));
    const flatBytes = this.flat.toBytes();
    await writeFileAtomically(join(dir, flatFile), flatBytes);
    const manifest: IndexManifest = {
      format: FORMAT,
      keyId: this.keyId,
      dim: this.dim,
      graph: { file: graphFile, crc32: await crc32File(join(dir, graphFile)), bytes: (await stat(join(dir, graphFile))).size },
      flat: { file: flatFile, crc32: crc32(flatBytes), bytes: flatBytes.length },
      live: this.size,
      storeNextId: info.storeNextId,
      savedAt: new Date().toISOString(),
    };
    await writeFileAtomically(manifestPath(dir, this.keyId), JSON.stringify(manifest));
    this.storeNextId = info.storeNextId;
    this.changedSinceFiles = false;
    await removeUnnamedFiles(dir, manifest);
  }

  /** `elements`: how many the graph must hold (every id the vector file has a slot for, removed ones included). */
  private async loadGraph(path: string, expected: string, elements: number): Promise<GraphStatus> {
    let reason: string;
    try {
      reason = (await crc32File(path)) === expected ? '' : `the index file ${path} does not match its checksum`;
    } catch {
      reason = `the index file ${path} is missing`;
    }
    if (!reason) {
      const graph = new HierarchicalNSW('cosine', this.dim);
      try {
        await graph.readIndex(path);
        if (graph.getCurrentCount() !== elements) throw new Error(`it holds ${graph.getCurrentCount()} elements, the vector file ${elements}`);
        graph.setEf(MIN_EF);
        for (const change of this.pending) {
          if (!change.vector) graph.markDelete(change.id);
          else if (change.revive) graph.unmarkDelete(change.id);
          else addToGraph(graph, change.id, change.vector);
        }
        this.pending = [];
        this.graph = graph;
        return { state: 'loaded' };
      } catch (error) {
        // A file written while the index changed matches its checksum and still fails here.
        reason = `the index file ${path} cannot be read (${error instanceof Error ? error.message : String(error)})`;
      }
    }
    await this.rebuildGraph();
    // The graph file on disk is the one that failed: the next save must replace it.
    this.changedSinceFiles = true;
    return { state: 'rebuilt', reason };
  }

  private static async loadLegacy(dir: string, manifest: LegacyManifest): Promise<VectorIndex> {
    const path = join(dir, `index-${manifest.keyId}.hnsw`);
    let digest: string;
    try {
      digest = await sha256File(path);
    } catch (error) {
      throw new AppError('INDEX_CORRUPT', `The index file ${path} is missing.`, { cause: error });
    }
    if (digest !== manifest.sha256) throw new AppError('INDEX_CORRUPT', `The index file ${path} does not match its checksum.`);
    const graph = new HierarchicalNSW('cosine', manifest.dim);
    try {
      await graph.readIndex(path);
    } catch (error) {
      throw new AppError('INDEX_CORRUPT', `The index file ${path} cannot be read.`, { cause: error });
    }
    graph.setEf(MIN_EF);
    const deleted = new Set(manifest.deleted);
    const ids = graph.getIdsList();
    const flat = FlatVectors.create(manifest.dim, ids.length + INITIAL_CAPACITY);
    const zero = new Float32Array(manifest.dim);
    for (const id of ids) {
      // hnswlib hands out no vector for a deleted label; its slot only has to exist.
      flat.add(id, deleted.has(id) ? zero : Float32Array.from(graph.getPoint(id)));
      if (deleted.has(id)) flat.remove(id);
    }
    return new VectorIndex(manifest.keyId, manifest.dim, flat, graph);
  }

  /** A new graph from the flat vectors, a chunk per turn of the event loop; changes made meanwhile are caught up at the end. */
  private async rebuildGraph(): Promise<void> {
    this.pending = [];
    const graph = newGraph(this.dim, Math.max(INITIAL_CAPACITY, this.size + 1024));
    const added = new Set<number>();
    for (const [id, vector] of this.flat.entries()) {
      addToGraph(graph, id, vector);
      added.add(id);
      if (added.size % REBUILD_CHUNK === 0) await setImmediate();
    }
    for (const id of added) if (!this.flat.has(id)) graph.markDelete(id);
    for (const [id, vector] of this.flat.entries()) if (!added.has(id)) addToGraph(graph, id, vector);
    this.graph = graph;
  }
}

/** Removes this key's files other than those `manifest` names: earlier generations, and writes never switched to. */
async function removeUnnamedFiles(dir: string, manifest: IndexManifest): Promise<void> {
  const keep = new Set([manifest.graph.file, manifest.flat.file, `index-${manifest.keyId}.json`]);
  for (const name of await readdir(dir)) {
    if (name.startsWith(`index-${manifest.keyId}.`) && !keep.has(name)) await rm(join(dir, name), { force: true });
  }
}

export async function removeIndexFiles(dir: string, keyId: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(`index-${keyId}.`)) await rm(join(dir, name), { force: true });
  }
}

/** Removes the index files of every key but `keyId`: the replaced key's, and those of retrains killed before their switch. */
export async function removeOtherIndexFiles(dir: string, keyId: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.startsWith('index-') && !name.startsWith(`index-${keyId}.`)) await rm(join(dir, name), { force: true });
  }
}

export async function indexFileBytes(dir: string, keyId: string): Promise<number> {
  const manifest = await readManifest(manifestPath(dir, keyId)).catch(() => null);
  if (!manifest || manifest.format === 1) return 0;
  return manifest.graph.bytes + manifest.flat.bytes;
}
