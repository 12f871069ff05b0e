import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import { AppError } from '../errors.js';
import { replaceFileAtomically, sha256File, writeFileAtomically } from '../util/atomic-file.js';

const { HierarchicalNSW } = hnswlib;

const M = 16;
const EF_CONSTRUCTION = 200;
const MIN_EF = 100;
const INITIAL_CAPACITY = 1024;
const FORMAT = 1;

interface IndexManifest {
  format: number;
  keyId: string;
  dim: number;
  sha256: string;
  bytes: number;
  live: number;
  deleted: number[];
  savedAt: string;
}

export interface Neighbour {
  id: number;
  /** Cosine similarity, 1 = same direction. */
  score: number;
}

export function indexPaths(dir: string, keyId: string): { data: string; manifest: string } {
  return { data: join(dir, `index-${keyId}.hnsw`), manifest: join(dir, `index-${keyId}.json`) };
}

/**
 * An HNSW cosine index over integer ids, persisted as an hnswlib file plus a manifest holding its checksum.
 * hnswlib reads a file whose body is corrupted without complaint and then crashes the process on search, so a
 * file is only handed to it after its sha256 matches the manifest.
 */
export class VectorIndex {
  /** Every label in the graph, deleted ones included: hnswlib has no cheap membership test of its own. */
  private readonly labels = new Set<number>();
  private readonly deleted = new Set<number>();

  private constructor(
    readonly keyId: string,
    readonly dim: number,
    private readonly hnsw: InstanceType<typeof HierarchicalNSW>,
  ) {}

  static create(keyId: string, dim: number, capacity = INITIAL_CAPACITY): VectorIndex {
    const hnsw = new HierarchicalNSW('cosine', dim);
    hnsw.initIndex({ maxElements: Math.max(capacity, 16), m: M, efConstruction: EF_CONSTRUCTION, randomSeed: 100 });
    hnsw.setEf(MIN_EF);
    return new VectorIndex(keyId, dim, hnsw);
  }

  /** Returns null when no index was saved for this key; throws INDEX_CORRUPT when one was and does not verify. */
  static async load(dir: string, keyId: string): Promise<VectorIndex | null> {
    const paths = indexPaths(dir, keyId);
    let manifest: IndexManifest;
    try {
      manifest = JSON.parse(await readFile(paths.manifest, 'utf8')) as IndexManifest;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new AppError('INDEX_CORRUPT', `The index manifest ${paths.manifest} is unreadable.`, { cause: error });
    }
    if (manifest.format !== FORMAT || manifest.keyId !== keyId) {
      throw new AppError('INDEX_CORRUPT', `The index manifest ${paths.manifest} is for another format or key.`);
    }
    let digest: string;
    try {
      digest = await sha256File(paths.data);
    } catch (error) {
      throw new AppError('INDEX_CORRUPT', `The index file ${paths.data} is missing.`, { cause: error });
    }
    if (digest !== manifest.sha256) {
      throw new AppError('INDEX_CORRUPT', `The index file ${paths.data} does not match its checksum.`);
    }
    const hnsw = new HierarchicalNSW('cosine', manifest.dim);
    try {
      await hnsw.readIndex(paths.data);
    } catch (error) {
      // A file written while the index changed matches its checksum and still fails here.
      throw new AppError('INDEX_CORRUPT', `The index file ${paths.data} cannot be read.`, { cause: error });
    }
    hnsw.setEf(MIN_EF);
    const index = new VectorIndex(keyId, manifest.dim, hnsw);
    for (const id of hnsw.getIdsList()) index.labels.add(id);
    for (const id of manifest.deleted) index.deleted.add(id);
    return index;
  }

  get size(): number {
    return this.labels.size - this.deleted.size;
  }

  /** Live ids, in no particular order. */
  ids(): number[] {
    return [...this.labels].filter((id) => !this.deleted.has(id));
  }

  has(id: number): boolean {
    return this.labels.has(id) && !this.deleted.has(id);
  }

  add(id: number, vector: Float32Array): void {
    if (vector.length !== this.dim) throw new AppError('INDEX_CORRUPT', `Vector of length ${vector.length} given to a ${this.dim}-d index.`);
    if (this.has(id)) return;
    if (this.deleted.delete(id)) {
      // Ids are never reused, so a deleted id coming back is the same image (a removal that did not complete).
      this.hnsw.unmarkDelete(id);
    } else {
      if (this.hnsw.getCurrentCount() >= this.hnsw.getMaxElements()) this.hnsw.resizeIndex(this.hnsw.getMaxElements() * 2);
      this.hnsw.addPoint(Array.from(vector), id);
      this.labels.add(id);
    }
  }

  remove(id: number): boolean {
    if (!this.has(id)) return false;
    this.hnsw.markDelete(id);
    this.deleted.add(id);
    return true;
  }

  search(vector: Float32Array, k: number, filter?: (id: number) => boolean): Neighbour[] {
    if (this.size === 0 || k <= 0) return [];
    this.hnsw.setEf(Math.max(MIN_EF, k));
    const accept = filter ? (id: number) => !this.deleted.has(id) && filter(id) : undefined;
    const result = this.hnsw.searchKnn(Array.from(vector), Math.min(k, this.size), accept);
    return result.neighbors.map((id, i) => ({ id, score: 1 - result.distances[i] }));
  }

  async save(dir: string): Promise<void> {
    const paths = indexPaths(dir, this.keyId);
    await replaceFileAtomically(paths.data, async (temp) => {
      await this.hnsw.writeIndex(temp);
    });
    const manifest: IndexManifest = {
      format: FORMAT,
      keyId: this.keyId,
      dim: this.dim,
      sha256: await sha256File(paths.data),
      bytes: (await stat(paths.data)).size,
      live: this.size,
      deleted: [...this.deleted],
      savedAt: new Date().toISOString(),
    };
    await writeFileAtomically(paths.manifest, JSON.stringify(manifest));
  }
}

export async function removeIndexFiles(dir: string, keyId: string): Promise<void> {
  const paths = indexPaths(dir, keyId);
  await rm(paths.data, { force: true });
  await rm(paths.manifest, { force: true });
}

/** Removes the index files of every key but `keyId`: the replaced key's, and those of retrains killed before their switch. */
export async function removeOtherIndexFiles(dir: string, keyId: string): Promise<void> {
  const keep = indexPaths(dir, keyId);
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    if (name.startsWith('index-') && path !== keep.data && path !== keep.manifest) await rm(path, { force: true });
  }
}

export async function indexFileBytes(dir: string, keyId: string): Promise<number> {
  try {
    return (await stat(indexPaths(dir, keyId).data)).size;
  } catch {
    return 0;
  }
}
