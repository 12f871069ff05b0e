import { AppError } from '../errors.js';

/**
 * Stored features as float16 BLOBs in the store's own SQLite file, eight consecutive ids to a row. One row per image
 * would cost a whole 4 KiB page each: 2,560 bytes of float16 fit a page once, not twice, so 1,536 bytes of every page
 * would stay empty; a row of eight spills into overflow pages, which SQLite fills to the byte. Each image is kept
 * without its zero features (a bitmap of the non-zero ones, then their float16 values): MobileNetV2's ReLU6
 * averages are exactly zero in about a third of the dimensions (31.5 % over the reference photos), so an image
 * takes ~1.9 KB rather than 2,560 bytes, and reads back bit for bit. Writes happen inside the caller's
 * transaction, so an image's features commit with its record.
 */
export const BLOCK_ROWS = 8;
/** Blocks read per query when paging through every stored feature (≈ 1.3 MB). */
const PAGE_BLOCKS = 64;

type Query = (sql: string, ...args: unknown[]) => Promise<unknown>;

interface BlockRow {
  block: number;
  /** Bit i set: the block holds the features of id block × 8 + i. */
  present: number;
  /** Bytes per image once expanded (2 × the number of features). */
  width: number;
  /** Eight little-endian uint16 slot lengths, then each present slot's packed features (`pack`). */
  f16: Buffer;
}

/** A block in memory: each slot's packed features, or undefined. */
interface Block {
  block: number;
  width: number;
  slots: Array<Buffer | undefined>;
}

const HEADER = BLOCK_ROWS * 2;
const MAX_WIDTH = 57_000;

/** A bitmap of the non-zero halves (bit i of byte i / 8 for half i), then those halves in order. */
export function pack(f16: Buffer): Buffer {
  const count = f16.length >>> 1;
  const bitmap = (count + 7) >>> 3;
  let nonZero = 0;
  for (let b = 0; b < f16.length; b += 2) if (f16[b] | f16[b + 1]) nonZero += 1;
  const out = Buffer.alloc(bitmap + nonZero * 2);
  for (let i = 0, o = bitmap; i < count; i++) {
    const lo = f16[i * 2];
    const hi = f16[i * 2 + 1];
    if (!(lo | hi)) continue;
    out[i >>> 3] |= 1 << (i & 7);
    out[o++] = lo;
    out[o++] = hi;
  }
  return out;
}

/** Writes the `width` bytes of float16 that `packed` holds into `out` at `offset` (zeros included). */
export function unpackInto(packed: Buffer, width: number, out: Buffer, offset: number): void {
  const count = width >>> 1;
  const bitmap = (count + 7) >>> 3;
  out.fill(0, offset, offset + width);
  for (let i = 0, o = bitmap; i < count; i++) {
    if (!(packed[i >>> 3] & (1 << (i & 7)))) continue;
    out[offset + i * 2] = packed[o++];
    out[offset + i * 2 + 1] = packed[o++];
  }
}

function unpack(packed: Buffer, width: number): Buffer {
  const out = Buffer.allocUnsafe(width);
  unpackInto(packed, width, out, 0);
  return out;
}

function fromRow(row: BlockRow): Block {
  const slots: Array<Buffer | undefined> = [];
  for (let slot = 0, at = HEADER; slot < BLOCK_ROWS; slot++) {
    const length = row.f16.readUInt16LE(slot * 2);
    slots.push(row.present & (1 << slot) ? row.f16.subarray(at, at + length) : undefined);
    at += length;
  }
  return { block: row.block, width: row.width, slots };
}

/** One page of stored features in id order: the float16 bytes of image ids[i] are f16 at i × width. */
export interface FeaturePage {
  ids: number[];
  width: number;
  f16: Buffer;
}

export class FeatureBlocks {
  constructor(private readonly query: Query) {}

  async createTable(): Promise<void> {
    await this.query('CREATE TABLE IF NOT EXISTS features(block INTEGER PRIMARY KEY, present INTEGER NOT NULL, width INTEGER NOT NULL, f16 BLOB NOT NULL)');
  }

  /** Stores each id's float16 bytes, one read and one write per block touched. Call inside a transaction. */
  async putMany(entries: Array<{ id: number; f16: Buffer }>): Promise<void> {
    const byBlock = new Map<number, Array<{ id: number; f16: Buffer }>>();
    for (const entry of entries) {
      const block = Math.floor(entry.id / BLOCK_ROWS);
      let list = byBlock.get(block);
      if (!list) byBlock.set(block, (list = []));
      list.push(entry);
    }
    const existing = await this.readBlocks([...byBlock.keys()]);
    for (const [number, list] of byBlock) {
      const block = existing.get(number) ?? { block: number, width: list[0].f16.length, slots: new Array<Buffer | undefined>(BLOCK_ROWS).fill(undefined) };
      for (const { id, f16 } of list) {
        // Slot lengths are uint16: 1280 features pack into at most 2,720 bytes, far below.
        if (f16.length !== block.width || block.width > MAX_WIDTH) {
          throw new AppError('STORE_FAILED', `Image ${id} has ${f16.length / 2} features where ${block.width / 2} were expected.`, { details: { id } });
        }
        block.slots[id - number * BLOCK_ROWS] = pack(f16);
      }
      await this.write(block);
    }
  }

  /** The float16 bytes stored for `id`, if any. */
  async get(id: number): Promise<Buffer | undefined> {
    return (await this.getMany([id])).get(id);
  }

  /** The float16 bytes of every id in `ids` that has features, read a block at a time. */
  async getMany(ids: number[]): Promise<Map<number, Buffer>> {
    const out = new Map<number, Buffer>();
    const blocks = await this.readBlocks([...new Set(ids.map((id) => Math.floor(id / BLOCK_ROWS)))]);
    for (const id of ids) {
      const block = blocks.get(Math.floor(id / BLOCK_ROWS));
      const packed = block?.slots[id % BLOCK_ROWS];
      if (block && packed) out.set(id, unpack(packed, block.width));
    }
    return out;
  }

  /** Removes the features of `id` (rewriting its block without them, so a forgotten image leaves nothing behind). Call inside a transaction. */
  async delete(id: number): Promise<void> {
    const number = Math.floor(id / BLOCK_ROWS);
    const block = (await this.readBlocks([number])).get(number);
    const slot = id - number * BLOCK_ROWS;
    if (!block?.slots[slot]) return;
    block.slots[slot] = undefined;
    if (block.slots.every((s) => s === undefined)) await this.query('DELETE FROM features WHERE block = ?', number);
    else await this.write(block);
  }

  /** Every stored feature row in id order, a page of blocks at a time, as the float16 bytes in the file. */
  async *pages(): AsyncGenerator<FeaturePage> {
    let after = -1;
    for (;;) {
      const rows = (await this.query(
        'SELECT block, present, width, f16 FROM features WHERE block > ? ORDER BY block LIMIT ?',
        after,
        PAGE_BLOCKS,
      )) as BlockRow[];
      if (rows.length === 0) return;
      // Rows of one width go out together; a page never mixes widths, so the caller can check it once.
      let ids: number[] = [];
      let packed: Buffer[] = [];
      let width = rows[0].width;
      const page = (): FeaturePage => {
        const f16 = Buffer.allocUnsafe(ids.length * width);
        packed.forEach((p, i) => unpackInto(p, width, f16, i * width));
        return { ids, width, f16 };
      };
      for (const row of rows) {
        if (row.width !== width && ids.length > 0) {
          yield page();
          ids = [];
          packed = [];
        }
        width = row.width;
        for (const [slot, p] of fromRow(row).slots.entries()) {
          if (!p) continue;
          ids.push(row.block * BLOCK_ROWS + slot);
          packed.push(p);
        }
      }
      if (ids.length > 0) yield page();
      after = rows[rows.length - 1].block;
    }
  }

  private async readBlocks(numbers: number[]): Promise<Map<number, Block>> {
    if (numbers.length === 0) return new Map();
    const rows = (await this.query(
      'SELECT block, present, width, f16 FROM features WHERE block IN (SELECT value FROM json_each(?))',
      JSON.stringify(numbers),
    )) as BlockRow[];
    return new Map(rows.map((row) => [row.block, fromRow(row)]));
  }

  private async write(block: Block): Promise<void> {
    const header = Buffer.alloc(HEADER);
    let present = 0;
    block.slots.forEach((slot, i) => {
      header.writeUInt16LE(slot?.length ?? 0, i * 2);
      if (slot) present |= 1 << i;
    });
    await this.query(
      'INSERT INTO features(block, present, width, f16) VALUES (?, ?, ?, ?) ON CONFLICT(block) DO UPDATE SET present = excluded.present, width = excluded.width, f16 = excluded.f16',
      block.block,
      present,
      block.width,
      Buffer.concat([header, ...block.slots.filter((slot): slot is Buffer => slot !== undefined)]),
    );
  }
}
