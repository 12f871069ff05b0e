import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import hnswlib from 'hnswlib-node';
import { AppError } from '../errors.js';
import { replaceFileAtomically, sha256File, writeFileAtomically } from '../util/atomic-file.js';
import { crc32, crc32File } from '../util/crc32.js';
import { FlatVectors, writeFlatFile, type Neighbour } from './flat-vectors.js';

export type { Neighbour } from './flat-vectors.js';

const { HierarchicalNSW } = hnswlib;
type Graph = InstanceType<typeof HierarchicalNSW>;

const M = 16;
/**
 * hnswlib's candidate list while inserting: build time grows about in proportion. 200 up to LARGE_INDEX elements
 * (a 100k build takes ~20-30 s on one core); above, 100, which builds ≈ 2× faster (200 took ~640 s at 1M, most of
 * a retrain's 10 minutes) at recall@20 0.976-0.988 at 1M at the engine's ef (0.999 at 200). 64 builds faster still
 * but loses queries at 1M: 0.97, a few reposts finding none of their 20 neighbours (docs/performance.md, "Retrain
 * at 1M").
 */
const EF_CONSTRUCTION = 200;
const LARGE_EF_CONSTRUCTION = 100;
export const LARGE_INDEX = 200_000;
const MIN_EF = 100;
const INITIAL_CAPACITY = 1024;
const FORMAT = 2 as const;
/** Graph additions between turns of the event loop while a graph is rebuilt in the background. */
const REBUILD_CHUNK = 2_000;
/** Ids are store ids (FlatVectors takes the same). */
const MAX_ID = 2 ** 31 - 1;

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

/** A graph built for `capacity` elements inserts with this efConstruction (kept in its file, used for later inserts too). */
export function efConstructionFor(capacity: number): number {
  return capacity > LARGE_INDEX ? LARGE_EF_CONSTRUCTION : EF_CONSTRUCTION;
}

function newGraph(dim: number, capacity: number): Graph {
  const graph = new HierarchicalNSW('cosine', dim);
  graph.initIndex({ maxElements: Math.max(capacity, 16), m: M, efConstruction: efConstructionFor(capacity), randomSeed: 100 });
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
    const flatBytes = this.flat.toBytes();
    await saveFiles(dir, this.keyId, this.dim, graph, this.size, info.storeNextId, async (path) => {
      await writeFileAtomically(path, flatBytes);
      return { crc32: crc32(flatBytes), bytes: flatBytes.length };
    });
    this.storeNextId = info.storeNextId;
    this.changedSinceFiles = false;
  }

  /**
   * Frees the graph's native memory now, which V8 does not see and so would not hurry to collect (≈ 500 MB at 1M
   * keys): for the index a swap replaced. A caller still holding this index is answered from the flat vectors.
   */
  release(): void {
    void this.graphReady.then(() => {
      const graph = this.graph;
      this.graph = undefined;
      graph?.initIndex({ maxElements: 1 });
    });
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

/**
 * Writes a new graph file and a flat file (by `writeFlat`), then the manifest that names them, then removes the
 * key's other files: a crash at any point leaves a manifest whose files are complete.
 */
async function saveFiles(
  dir: string,
  keyId: string,
  dim: number,
  graph: Graph,
  live: number,
  storeNextId: number | undefined,
  writeFlat: (path: string) => Promise<{ crc32: string; bytes: number }>,
): Promise<void> {
  const generation = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const graphFile = `index-${keyId}.${generation}.hnsw`;
  const flatFile = `index-${keyId}.${generation}.flat`;
  await replaceFileAtomically(join(dir, graphFile), (temp) => graph.writeIndex(temp).then(() => undefined));
  const flat = await writeFlat(join(dir, flatFile));
  const manifest: IndexManifest = {
    format: FORMAT,
    keyId,
    dim,
    graph: { file: graphFile, crc32: await crc32File(join(dir, graphFile)), bytes: (await stat(join(dir, graphFile))).size },
    flat: { file: flatFile, ...flat },
    live,
    storeNextId,
    savedAt: new Date().toISOString(),
  };
  await writeFileAtomically(manifestPath(dir, keyId), JSON.stringify(manifest));
  await removeUnnamedFiles(dir, manifest);
}

/**
 * A new index built to be saved and loaded by another thread (a retrain's worker): it holds only the graph, and
 * writes the flat vector file from the graph's own copy of the vectors when saved. A VectorIndex holds every unit
 * vector twice (graph and flat vectors: 256 MB more at 1M 64-d keys), which a builder that never searches does not
 * need. Ids are store ids, each added once.
 */
export class IndexBuilder {
  private graph: Graph | undefined;
  private ids: Uint32Array;
  private count = 0;
  /** added[id] = 1 once id is in the graph. */
  private added = new Uint8Array(INITIAL_CAPACITY);

  constructor(
    readonly keyId: string,
    readonly dim: number,
    capacity: number,
  ) {
    this.graph = newGraph(dim, capacity);
    this.ids = new Uint32Array(Math.max(16, capacity));
  }

  get size(): number {
    return this.count;
  }

  add(id: number, vector: Float32Array): void {
    if (vector.length !== this.dim) throw new AppError('INDEX_CORRUPT', `Vector of length ${vector.length} given to a ${this.dim}-d index.`);
    if (!Number.isInteger(id) || id < 0 || id > MAX_ID) throw new AppError('INDEX_CORRUPT', `Index ids are integers from 0 to ${MAX_ID}; got ${id}.`);
    if (this.added[id] === 1) return;
    if (id >= this.added.length) {
      const added = new Uint8Array(Math.max(id + 1, this.added.length * 2));
      added.set(this.added);
      this.added = added;
    }
    if (this.count === this.ids.length) {
      const ids = new Uint32Array(Math.ceil(this.ids.length * 1.5));
      ids.set(this.ids);
      this.ids = ids;
    }
    addToGraph(this.graph!, id, vector);
    this.added[id] = 1;
    this.ids[this.count++] = id;
  }

  /** Saves the index as VectorIndex.save would, then frees the graph: the builder is done with. */
  async save(dir: string, info: { storeNextId?: number } = {}): Promise<void> {
    const graph = this.graph!;
    const { dim, ids, count } = this;
    await saveFiles(dir, this.keyId, dim, graph, count, info.storeNextId, async (path) => {
      let written = { crc32: '', bytes: 0 };
      await replaceFileAtomically(path, async (temp) => {
        const file = await open(temp, 'w');
        try {
          // hnswlib keeps cosine vectors unit-normalised: its copy is what the flat file holds.
          written = await writeFlatFile(file, dim, ids, count, (slot, out, offset) => out.set(graph.getPoint(ids[slot]), offset));
        } finally {
          await file.close();
        }
      });
      return written;
    });
    this.graph = undefined;
    graph.initIndex({ maxElements: 1 });
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
