import { AppError } from '../errors.js';

/**
 * Stored features as float16 BLOBs in the store's own SQLite file, eight consecutive ids to a row. One row per image
 * would cost a whole 4 KiB page each: 2,560 bytes of float16 fit a page once, not twice, so 1,536 bytes of every page
 * would stay empty. A block of 8 (20 KiB) fills five overflow pages to the byte, about 2,620 bytes per image.
 * Writes happen inside the caller's transaction, so an image's features commit with its record.
 */
export const BLOCK_ROWS = 8;
/** Blocks read per query when paging through every stored feature (≈ 1.3 MB). */
const PAGE_BLOCKS = 64;

type Query = (sql: string, ...args: unknown[]) => Promise<unknown>;

interface BlockRow {
  block: number;
  /** Bit i set: the block holds the features of id block × 8 + i. */
  present: number;
  /** Bytes per image (2 × the number of features). */
  width: number;
  f16: Buffer;
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
    const existing = new Map((await this.readBlocks([...byBlock.keys()])).map((row) => [row.block, row]));
    for (const [block, list] of byBlock) {
      const width = existing.get(block)?.width ?? list[0].f16.length;
      const row = existing.get(block) ?? { block, present: 0, width, f16: Buffer.alloc(width * BLOCK_ROWS) };
      for (const { id, f16 } of list) {
        if (f16.length !== width) {
          throw new AppError('STORE_FAILED', `Image ${id} has ${f16.length / 2} features where ${width / 2} were expected.`, { details: { id } });
        }
        const slot = id - block * BLOCK_ROWS;
        f16.copy(row.f16, slot * width);
        row.present |= 1 << slot;
      }
      await this.write(row);
    }
  }

  /** The float16 bytes stored for `id`, if any. */
  async get(id: number): Promise<Buffer | undefined> {
    const [row] = await this.readBlocks([Math.floor(id / BLOCK_ROWS)]);
    const slot = id - Math.floor(id / BLOCK_ROWS) * BLOCK_ROWS;
    if (!row || !(row.present & (1 << slot))) return undefined;
    return Buffer.from(row.f16.subarray(slot * row.width, (slot + 1) * row.width));
  }

  /** The float16 bytes of every id in `ids` that has features, read a block at a time. */
  async getMany(ids: number[]): Promise<Map<number, Buffer>> {
    const out = new Map<number, Buffer>();
    const rows = new Map((await this.readBlocks([...new Set(ids.map((id) => Math.floor(id / BLOCK_ROWS)))])).map((row) => [row.block, row]));
    for (const id of ids) {
      const row = rows.get(Math.floor(id / BLOCK_ROWS));
      const slot = id % BLOCK_ROWS;
      if (row && row.present & (1 << slot)) out.set(id, row.f16.subarray(slot * row.width, (slot + 1) * row.width));
    }
    return out;
  }

  /** Removes the features of `id`: the bytes are zeroed, not only unmarked, so a forgotten image leaves nothing behind. Call inside a transaction. */
  async delete(id: number): Promise<void> {
    const block = Math.floor(id / BLOCK_ROWS);
    const [row] = await this.readBlocks([block]);
    const slot = id - block * BLOCK_ROWS;
    if (!row || !(row.present & (1 << slot))) return;
    row.present &= ~(1 << slot);
    if (row.present === 0) {
      await this.query('DELETE FROM features WHERE block = ?', block);
      return;
    }
    row.f16.fill(0, slot * row.width, (slot + 1) * row.width);
    await this.write(row);
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
      let parts: Buffer[] = [];
      let width = rows[0].width;
      for (const row of rows) {
        if (row.width !== width && ids.length > 0) {
          yield { ids, width, f16: Buffer.concat(parts) };
          ids = [];
          parts = [];
        }
        width = row.width;
        for (let slot = 0; slot < BLOCK_ROWS; slot++) {
          if (!(row.present & (1 << slot))) continue;
          ids.push(row.block * BLOCK_ROWS + slot);
          parts.push(row.f16.subarray(slot * row.width, (slot + 1) * row.width));
        }
      }
      if (ids.length > 0) yield { ids, width, f16: Buffer.concat(parts) };
      after = rows[rows.length - 1].block;
    }
  }

  private async readBlocks(blocks: number[]): Promise<BlockRow[]> {
    if (blocks.length === 0) return [];
    return (await this.query(
      'SELECT block, present, width, f16 FROM features WHERE block IN (SELECT value FROM json_each(?))',
      JSON.stringify(blocks),
    )) as BlockRow[];
  }

  private async write(row: BlockRow): Promise<void> {
    await this.query(
      'INSERT INTO features(block, present, width, f16) VALUES (?, ?, ?, ?) ON CONFLICT(block) DO UPDATE SET present = excluded.present, width = excluded.width, f16 = excluded.f16',
      row.block,
      row.present,
      row.width,
      row.f16,
    );
  }
}
