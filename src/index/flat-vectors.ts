import type { FileHandle } from 'node:fs/promises';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { AppError } from '../errors.js';
import { dot } from '../ml/linalg.js';

export interface Neighbour {
  id: number;
  /** Cosine similarity, 1 = same direction. */
  score: number;
}

const MAGIC = 'DIRFLAT2';
const HEADER_BYTES = 16;
/** Ids are store ids: small non-negative integers, so a typed array indexed by id finds a slot faster than a Map. */
const MAX_ID = 2 ** 31 - 1;

/**
 * Every vector of an index, unit-normalised, one slot per id: an exact cosine search that needs no graph. It
 * answers while the HNSW graph of a large index is still loading (hnswlib reads ~10 µs per element, ~14 s at
 * 1M), and its file, one block of numbers, loads as fast as the disk reads it.
 *
 * File: 16-byte header (magic, dim, count), ids (uint32), vectors (float32), removed flags (uint8): every array
 * starts 4-byte aligned, so a loaded file is used in place rather than copied.
 */
export class FlatVectors {
  /** slotOf[id] = slot + 1; 0 for an id never added. */
  private slotOf: Int32Array;
  private live = 0;

  private constructor(
    readonly dim: number,
    private ids: Uint32Array,
    private data: Float32Array,
    private dead: Uint8Array,
    private count: number,
  ) {
    let maxId = -1;
    for (let slot = 0; slot < count; slot++) maxId = Math.max(maxId, ids[slot]);
    this.slotOf = new Int32Array(Math.max(1024, maxId + 1));
    for (let slot = 0; slot < count; slot++) {
      this.slotOf[ids[slot]] = slot + 1;
      if (!dead[slot]) this.live += 1;
    }
  }

  static create(dim: number, capacity = 1024): FlatVectors {
    const size = Math.max(16, capacity);
    return new FlatVectors(dim, new Uint32Array(size), new Float32Array(size * dim), new Uint8Array(size), 0);
  }

  /** Reads what `toBytes` wrote, in place; throws INDEX_CORRUPT on anything else. */
  static fromBytes(bytes: Buffer, dim: number): FlatVectors {
    const corrupt = (why: string) => new AppError('INDEX_CORRUPT', `The index's vector file is damaged (${why}).`);
    if (bytes.length < HEADER_BYTES || bytes.toString('latin1', 0, 8) !== MAGIC) throw corrupt('no header');
    const fileDim = bytes.readUInt32LE(8);
    const count = bytes.readUInt32LE(12);
    if (fileDim !== dim) throw corrupt(`${fileDim} dimensions, expected ${dim}`);
    if (bytes.length !== HEADER_BYTES + count * (4 + 4 * dim + 1)) throw corrupt('wrong length');
    // A Buffer from a small pool may start anywhere in its ArrayBuffer; one of our own starts at 0.
    const own = bytes.byteOffset % 4 === 0 ? bytes : Buffer.from(bytes);
    const at = own.byteOffset + HEADER_BYTES;
    const ids = new Uint32Array(own.buffer, at, count);
    const data = new Float32Array(own.buffer, at + 4 * count, count * dim);
    const dead = new Uint8Array(own.buffer, at + 4 * count + 4 * count * dim, count);
    return new FlatVectors(dim, ids, data, dead, count);
  }

  toBytes(): Buffer {
    return Buffer.concat([
      flatHeader(this.dim, this.count),
      Buffer.from(this.ids.buffer, this.ids.byteOffset, 4 * this.count),
      Buffer.from(this.data.buffer, this.data.byteOffset, 4 * this.dim * this.count),
      Buffer.from(this.dead.buffer, this.dead.byteOffset, this.count),
    ]);
  }

  get size(): number {
    return this.live;
  }

  /** How many ids were ever added, removed ones included (the elements a matching HNSW graph holds). */
  get slots(): number {
    return this.count;
  }

  /** Every id ever added, removed ones included, in slot order. */
  *labels(): IterableIterator<number> {
    for (let slot = 0; slot < this.count; slot++) yield this.ids[slot];
  }

  has(id: number): boolean {
    const slot = this.slotFor(id);
    return slot >= 0 && this.dead[slot] === 0;
  }

  isRemoved(id: number): boolean {
    const slot = this.slotFor(id);
    return slot >= 0 && this.dead[slot] === 1;
  }

  /** Live ids with their unit vectors, in slot order (for rebuilding a graph). */
  *entries(): IterableIterator<[number, Float32Array]> {
    for (let slot = 0; slot < this.count; slot++) {
      if (!this.dead[slot]) yield [this.ids[slot], this.data.subarray(slot * this.dim, (slot + 1) * this.dim)];
    }
  }

  /** Adds a new id, or brings a removed one back with its vector replaced. */
  add(id: number, vector: Float32Array): void {
    if (!Number.isInteger(id) || id < 0 || id > MAX_ID) throw new AppError('INDEX_CORRUPT', `Index ids are integers from 0 to ${MAX_ID}; got ${id}.`);
    let slot = this.slotFor(id);
    if (slot < 0) {
      if (this.count === this.ids.length) this.grow();
      slot = this.count++;
      this.ids[slot] = id;
      if (id >= this.slotOf.length) {
        const slotOf = new Int32Array(Math.max(id + 1, this.slotOf.length * 2));
        slotOf.set(this.slotOf);
        this.slotOf = slotOf;
      }
      this.slotOf[id] = slot + 1;
    } else if (!this.dead[slot]) {
      return;
    }
    this.dead[slot] = 0;
    this.live += 1;
    const row = this.data.subarray(slot * this.dim, (slot + 1) * this.dim);
    let norm = 0;
    for (let i = 0; i < this.dim; i++) norm += vector[i] * vector[i];
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let i = 0; i < this.dim; i++) row[i] = vector[i] * scale;
  }

  remove(id: number): boolean {
    const slot = this.slotFor(id);
    if (slot < 0 || this.dead[slot]) return false;
    this.dead[slot] = 1;
    this.live -= 1;
    return true;
  }

  /** The mean of the live unit vectors (zeros when there are none). */
  mean(): Float32Array {
    const { dim, data, dead } = this;
    const sum = new Float64Array(dim);
    for (let slot = 0; slot < this.count; slot++) {
      if (dead[slot]) continue;
      const o = slot * dim;
      for (let i = 0; i < dim; i++) sum[i] += data[o + i];
    }
    return Float32Array.from(sum, (v) => (this.live > 0 ? v / this.live : 0));
  }

  /** The k most similar live vectors, best first, without `exclude`. */
  search(vector: Float32Array, k: number, exclude?: number): Neighbour[] {
    const { dim, data, dead, ids } = this;
    let norm = 0;
    for (let i = 0; i < dim; i++) norm += vector[i] * vector[i];
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    const q = Float32Array.from(vector, (v) => v * scale);
    // A sorted list of the best k: a candidate is compared with the worst kept one first, so nearly all slots
    // cost one comparison after the dot product.
    const bestScore: number[] = [];
    const bestId: number[] = [];
    for (let slot = 0; slot < this.count; slot++) {
      if (dead[slot]) continue;
      const score = dot(q, 0, data, slot * dim, dim);
      if (bestScore.length === k && score <= bestScore[k - 1]) continue;
      if (ids[slot] === exclude) continue;
      let at = bestScore.length;
      while (at > 0 && bestScore[at - 1] < score) at--;
      bestScore.splice(at, 0, score);
      bestId.splice(at, 0, ids[slot]);
      if (bestScore.length > k) {
        bestScore.pop();
        bestId.pop();
      }
    }
    return bestId.map((id, i) => ({ id, score: bestScore[i] }));
  }

  /** The slot of `id`, or -1. */
  private slotFor(id: number): number {
    return Number.isInteger(id) && id >= 0 && id < this.slotOf.length ? this.slotOf[id] - 1 : -1;
  }

  private grow(): void {
    // 1.5×: a loaded index is exactly full, and its first addition copies everything.
    const size = Math.max(16, Math.ceil(this.ids.length * 1.5));
    const ids = new Uint32Array(size);
    ids.set(this.ids);
    const dead = new Uint8Array(size);
    dead.set(this.dead);
    const data = new Float32Array(size * this.dim);
    data.set(this.data);
    this.ids = ids;
    this.dead = dead;
    this.data = data;
  }
}

function flatHeader(dim: number, count: number): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.write(MAGIC, 0, 'latin1');
  header.writeUInt32LE(dim, 8);
  header.writeUInt32LE(count, 12);
  return header;
}

/** Rows copied per write by `writeFlatFile`. */
const WRITE_ROWS = 4096;

/**
 * Writes what `toBytes` would for `count` live vectors without holding them as one array: `rowInto` puts the unit
 * vector of slot `slot` (id `ids[slot]`) at `out[offset…]`, a chunk of rows at a time. Returns the file's CRC-32
 * (as `crc32` formats it) and length.
 */
export async function writeFlatFile(
  file: FileHandle,
  dim: number,
  ids: Uint32Array,
  count: number,
  rowInto: (slot: number, out: Float32Array, offset: number) => void,
): Promise<{ crc32: string; bytes: number }> {
  let crc = 0;
  let bytes = 0;
  const write = async (chunk: Uint8Array): Promise<void> => {
    await file.write(chunk);
    crc = zlibCrc32(chunk, crc);
    bytes += chunk.length;
  };
  await write(flatHeader(dim, count));
  await write(new Uint8Array(ids.buffer, ids.byteOffset, 4 * count));
  const rows = new Float32Array(WRITE_ROWS * dim);
  for (let from = 0; from < count; from += WRITE_ROWS) {
    const n = Math.min(WRITE_ROWS, count - from);
    for (let i = 0; i < n; i++) rowInto(from + i, rows, i * dim);
    await write(new Uint8Array(rows.buffer, 0, 4 * n * dim));
  }
  // No slot is removed.
  await write(new Uint8Array(count));
  return { crc32: (crc >>> 0).toString(16).padStart(8, '0'), bytes };
}
