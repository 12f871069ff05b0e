import { AppError } from '../errors.js';

export interface Neighbour {
  id: number;
  /** Cosine similarity, 1 = same direction. */
  score: number;
}

const MAGIC = 'DIRFLAT1';
const HEADER_BYTES = 16;

/**
 * Every vector of an index, unit-normalised, one slot per id: an exact cosine search that needs no graph. It
 * answers while the HNSW graph of a large index is still loading (hnswlib reads ~10 µs per element, ~14 s at
 * 1M), and its file, one block of numbers, loads as fast as the disk reads it.
 */
export class FlatVectors {
  private readonly slots = new Map<number, number>();
  private live = 0;

  private constructor(
    readonly dim: number,
    private ids: Float64Array,
    private data: Float32Array,
    private dead: Uint8Array,
    private count: number,
  ) {
    for (let slot = 0; slot < count; slot++) {
      this.slots.set(ids[slot], slot);
      if (!dead[slot]) this.live += 1;
    }
  }

  static create(dim: number, capacity = 1024): FlatVectors {
    const size = Math.max(16, capacity);
    return new FlatVectors(dim, new Float64Array(size), new Float32Array(size * dim), new Uint8Array(size), 0);
  }

  /** Reads what `toBytes` wrote; throws INDEX_CORRUPT on anything else. */
  static fromBytes(bytes: Buffer, dim: number): FlatVectors {
    const corrupt = (why: string) => new AppError('INDEX_CORRUPT', `The index's vector file is damaged (${why}).`);
    if (bytes.length < HEADER_BYTES || bytes.toString('latin1', 0, 8) !== MAGIC) throw corrupt('no header');
    const fileDim = bytes.readUInt32LE(8);
    const count = bytes.readUInt32LE(12);
    if (fileDim !== dim) throw corrupt(`${fileDim} dimensions, expected ${dim}`);
    if (bytes.length !== HEADER_BYTES + count * (8 + 1 + 4 * dim)) throw corrupt('wrong length');
    // Copies, not views: the buffer's offsets need not be aligned for Float64Array, and the arrays grow later.
    let offset = HEADER_BYTES;
    const ids = new Float64Array(Math.max(16, count));
    bytes.copy(Buffer.from(ids.buffer), 0, offset, (offset += 8 * count));
    const dead = new Uint8Array(Math.max(16, count));
    bytes.copy(dead, 0, offset, (offset += count));
    const data = new Float32Array(Math.max(16, count) * dim);
    bytes.copy(Buffer.from(data.buffer), 0, offset, offset + 4 * dim * count);
    return new FlatVectors(dim, ids, data, dead, count);
  }

  toBytes(): Buffer {
    const header = Buffer.alloc(HEADER_BYTES);
    header.write(MAGIC, 0, 'latin1');
    header.writeUInt32LE(this.dim, 8);
    header.writeUInt32LE(this.count, 12);
    return Buffer.concat([
      header,
      Buffer.from(this.ids.buffer, 0, 8 * this.count),
      Buffer.from(this.dead.buffer, 0, this.count),
      Buffer.from(this.data.buffer, 0, 4 * this.dim * this.count),
    ]);
  }

  get size(): number {
    return this.live;
  }

  /** Every id ever added, removed ones included, in slot order. */
  labels(): IterableIterator<number> {
    return this.slots.keys();
  }

  has(id: number): boolean {
    const slot = this.slots.get(id);
    return slot !== undefined && this.dead[slot] === 0;
  }

  isRemoved(id: number): boolean {
    const slot = this.slots.get(id);
    return slot !== undefined && this.dead[slot] === 1;
  }

  /** Live ids with their unit vectors, in slot order (for rebuilding a graph). */
  *entries(): IterableIterator<[number, Float32Array]> {
    for (let slot = 0; slot < this.count; slot++) {
      if (!this.dead[slot]) yield [this.ids[slot], this.data.subarray(slot * this.dim, (slot + 1) * this.dim)];
    }
  }

  /** Adds a new id, or brings a removed one back with its vector replaced. */
  add(id: number, vector: Float32Array): void {
    let slot = this.slots.get(id);
    if (slot === undefined) {
      if (this.count === this.ids.length) this.grow();
      slot = this.count++;
      this.ids[slot] = id;
      this.slots.set(id, slot);
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
    const slot = this.slots.get(id);
    if (slot === undefined || this.dead[slot]) return false;
    this.dead[slot] = 1;
    this.live -= 1;
    return true;
  }

  /** The k most similar live vectors, best first, without `exclude`. */
  search(vector: Float32Array, k: number, exclude?: number): Neighbour[] {
    const { dim, data, dead, ids } = this;
    let norm = 0;
    for (let i = 0; i < dim; i++) norm += vector[i] * vector[i];
    const q = Float32Array.from(vector, (v) => (norm > 0 ? v / Math.sqrt(norm) : 0));
    // A sorted list of the best k: a candidate is compared with the worst kept one first, so nearly all slots
    // cost one comparison after the dot product.
    const bestScore: number[] = [];
    const bestId: number[] = [];
    for (let slot = 0; slot < this.count; slot++) {
      if (dead[slot]) continue;
      const o = slot * dim;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let i = 0;
      for (; i + 3 < dim; i += 4) {
        s0 += q[i] * data[o + i];
        s1 += q[i + 1] * data[o + i + 1];
        s2 += q[i + 2] * data[o + i + 2];
        s3 += q[i + 3] * data[o + i + 3];
      }
      for (; i < dim; i++) s0 += q[i] * data[o + i];
      const score = s0 + s1 + s2 + s3;
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

  private grow(): void {
    const size = this.ids.length * 2;
    const ids = new Float64Array(size);
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
