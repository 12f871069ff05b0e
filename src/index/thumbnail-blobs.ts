/**
 * Stored thumbnails (128 px WebP, ~1-5 KB) as raw bytes in a table of their own in the store's SQLite file, eight
 * consecutive ids to a row, as the features are (feature-blobs.ts). Raw rather than base64 inside keyv's JSON saves
 * a third; eight to a row because one 2.6 KB thumbnail per row would fill a 4 KiB page with ~1.4 KB that only a small
 * neighbour could use, while a row of eight (~21 KB) spills into overflow pages that SQLite fills to the byte. Writes
 * happen inside the caller's transaction, so a thumbnail commits with its record.
 */
export const THUMBNAIL_BLOCK_ROWS = 8;

type Query = (sql: string, ...args: unknown[]) => Promise<unknown>;

interface BlockRow {
  block: number;
  /** Bit i set: the block holds the thumbnail of id block × 8 + i (an empty thumbnail is still one). */
  present: number;
  /** Eight little-endian uint32 slot lengths, then each present slot's bytes in slot order. */
  data: Buffer;
}

const HEADER = THUMBNAIL_BLOCK_ROWS * 4;

function slotsOf(row: BlockRow): Array<Buffer | undefined> {
  const slots: Array<Buffer | undefined> = [];
  for (let slot = 0, at = HEADER; slot < THUMBNAIL_BLOCK_ROWS; slot++) {
    const length = row.data.readUInt32LE(slot * 4);
    slots.push(row.present & (1 << slot) ? row.data.subarray(at, at + length) : undefined);
    at += length;
  }
  return slots;
}

export class ThumbnailBlocks {
  constructor(private readonly query: Query) {}

  async createTable(): Promise<void> {
    await this.query('CREATE TABLE IF NOT EXISTS thumbnails(block INTEGER PRIMARY KEY, present INTEGER NOT NULL, data BLOB NOT NULL)');
  }

  /** Stores each id's thumbnail, one read and one write per block touched. Call inside a transaction. */
  async putMany(entries: Array<{ id: number; bytes: Uint8Array }>): Promise<void> {
    if (entries.length === 0) return;
    const byBlock = new Map<number, Array<{ id: number; bytes: Uint8Array }>>();
    for (const entry of entries) {
      const block = Math.floor(entry.id / THUMBNAIL_BLOCK_ROWS);
      let list = byBlock.get(block);
      if (!list) byBlock.set(block, (list = []));
      list.push(entry);
    }
    const existing = await this.readBlocks([...byBlock.keys()]);
    for (const [number, list] of byBlock) {
      const slots = existing.get(number) ?? new Array<Buffer | undefined>(THUMBNAIL_BLOCK_ROWS).fill(undefined);
      // Copied: the caller's bytes may be a view into a larger buffer it goes on using.
      for (const { id, bytes } of list) slots[id - number * THUMBNAIL_BLOCK_ROWS] = Buffer.from(bytes);
      await this.write(number, slots);
    }
  }

  /** The thumbnail stored for `id`, if any. */
  async get(id: number): Promise<Buffer | undefined> {
    const number = Math.floor(id / THUMBNAIL_BLOCK_ROWS);
    const slot = (await this.readBlocks([number])).get(number)?.[id - number * THUMBNAIL_BLOCK_ROWS];
    // A copy, so the caller does not keep the whole block's bytes alive through a view.
    return slot && Buffer.from(slot);
  }

  /** Removes the thumbnail of `id`, rewriting its block without it (a forgotten image leaves nothing behind). Call inside a transaction. */
  async delete(id: number): Promise<void> {
    const number = Math.floor(id / THUMBNAIL_BLOCK_ROWS);
    const slots = (await this.readBlocks([number])).get(number);
    const slot = id - number * THUMBNAIL_BLOCK_ROWS;
    if (!slots?.[slot]) return;
    slots[slot] = undefined;
    if (slots.every((s) => s === undefined)) await this.query('DELETE FROM thumbnails WHERE block = ?', number);
    else await this.write(number, slots);
  }

  private async readBlocks(numbers: number[]): Promise<Map<number, Array<Buffer | undefined>>> {
    if (numbers.length === 0) return new Map();
    const rows = (await this.query(
      'SELECT block, present, data FROM thumbnails WHERE block IN (SELECT value FROM json_each(?))',
      JSON.stringify(numbers),
    )) as BlockRow[];
    return new Map(rows.map((row) => [row.block, slotsOf(row)]));
  }

  private async write(number: number, slots: Array<Buffer | undefined>): Promise<void> {
    const header = Buffer.alloc(HEADER);
    let present = 0;
    slots.forEach((slot, i) => {
      header.writeUInt32LE(slot?.length ?? 0, i * 4);
      if (slot) present |= 1 << i;
    });
    await this.query(
      'INSERT INTO thumbnails(block, present, data) VALUES (?, ?, ?) ON CONFLICT(block) DO UPDATE SET present = excluded.present, data = excluded.data',
      number,
      present,
      Buffer.concat([header, ...slots.filter((slot): slot is Buffer => slot !== undefined)]),
    );
  }
}
