import { referencesOf, type RecordValue } from './image-record.js';

/**
 * The image records, the duplicate check and the lookup by caller key, in tables of the store's SQLite file:
 * `images(id, sha, width, height, added_at, refs)` with an index on `sha`, and `image_refs(ref, id)` WITHOUT ROWID.
 * They were keyv keys (`img:<id>`, `sha:<sha256>`, `ref:<ref>|<id>`), which cost ~400 B per bot-shaped image more:
 * keyv keeps every key twice (its table and its key index), wraps every value in `{"value":…,"expires":null}`, and
 * the duplicate check held the 64-hex sha256 in two keys (see docs/performance.md). Here the id is the row id, the
 * sha256 32 raw bytes and the record's fields columns; `refs` is the compact references' JSON (image-record.ts).
 * Writes happen inside the caller's transaction, so a record commits with its features and thumbnail.
 */
type Query = (sql: string, ...args: unknown[]) => Promise<unknown>;

interface ImageRow {
  id: number;
  sha: Buffer | string;
  width: number;
  height: number;
  added_at: string;
  refs: string;
}

const COLUMNS = 'id, sha, width, height, added_at, refs';
/** The indexed part of `sha`; a query names the very same expression, so SQLite uses the index. */
const SHA_PREFIX = 'substr(sha, 1, 8)';

/**
 * The sha256 as stored: 32 raw bytes when it is 64 lowercase hex digits (what the store's callers hash to), else
 * the string as it is, so any value reads back exactly (the column has no type affinity; a BLOB and a TEXT never
 * compare equal, so lookups stay exact too).
 */
export function shaColumn(sha256: string): Buffer | string {
  return /^[0-9a-f]{64}$/.test(sha256) ? Buffer.from(sha256, 'hex') : sha256;
}

function toValue(row: ImageRow): RecordValue {
  return {
    id: row.id,
    sha256: Buffer.isBuffer(row.sha) ? row.sha.toString('hex') : row.sha,
    width: row.width,
    height: row.height,
    addedAt: row.added_at,
    r: JSON.parse(row.refs) as RecordValue['r'],
  };
}

/** The distinct caller keys (`ref`) of a record's references. */
function refsOf(value: RecordValue): Set<string> {
  const out = new Set<string>();
  for (const { ref } of referencesOf(value)) if (ref !== undefined) out.add(ref);
  return out;
}

export class ImageTables {
  constructor(private readonly query: Query) {}

  async createTables(): Promise<void> {
    // `sha` declared BLOB has no type affinity: each value keeps the type it was written with (see shaColumn).
    await this.query('CREATE TABLE IF NOT EXISTS images(id INTEGER PRIMARY KEY, sha BLOB NOT NULL, width INTEGER, height INTEGER, added_at TEXT, refs TEXT NOT NULL)');
    // The duplicate check's index holds the sha256's first 8 bytes, not 32: 19 B per image instead of 46 (measured
    // at 100k), and a lookup still reads one index entry and one row (the full sha is compared there).
    await this.query(`CREATE INDEX IF NOT EXISTS images_sha ON images(${SHA_PREFIX})`);
    await this.query('CREATE TABLE IF NOT EXISTS image_refs(ref TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY(ref, id)) WITHOUT ROWID');
  }

  /**
   * Writes the record (compact: `r`, see image-record.ts `upgraded`), replacing the one with its id, and brings its
   * caller keys in step: those of `previous` (the record as it was, if it was stored) it no longer has go.
   */
  async write(value: RecordValue, previous?: RecordValue): Promise<void> {
    await this.query(
      `INSERT INTO images(${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET sha = excluded.sha, width = excluded.width, height = excluded.height, added_at = excluded.added_at, refs = excluded.refs`,
      value.id,
      shaColumn(value.sha256),
      value.width,
      value.height,
      value.addedAt,
      JSON.stringify(value.r ?? []),
    );
    const now = refsOf(value);
    const before = previous ? refsOf(previous) : new Set<string>();
    for (const ref of before) if (!now.has(ref)) await this.query('DELETE FROM image_refs WHERE ref = ? AND id = ?', ref, value.id);
    for (const ref of now) if (!before.has(ref)) await this.query('INSERT OR IGNORE INTO image_refs(ref, id) VALUES (?, ?)', ref, value.id);
  }

  /** Removes the record and its caller keys. */
  async remove(value: RecordValue): Promise<void> {
    await this.query('DELETE FROM images WHERE id = ?', value.id);
    for (const ref of refsOf(value)) await this.query('DELETE FROM image_refs WHERE ref = ? AND id = ?', ref, value.id);
  }

  async get(id: number): Promise<RecordValue | undefined> {
    const rows = (await this.query(`SELECT ${COLUMNS} FROM images WHERE id = ?`, id)) as ImageRow[];
    return rows[0] && toValue(rows[0]);
  }

  async getMany(ids: number[]): Promise<RecordValue[]> {
    if (ids.length === 0) return [];
    const rows = (await this.query(`SELECT ${COLUMNS} FROM images WHERE id IN (SELECT value FROM json_each(?))`, JSON.stringify(ids))) as ImageRow[];
    return rows.map(toValue);
  }

  async has(id: number): Promise<boolean> {
    return ((await this.query('SELECT 1 FROM images WHERE id = ?', id)) as unknown[]).length > 0;
  }

  /** The newest stored image with these bytes, if any (an import stores without a duplicate check, so there may be several). */
  async findBySha(sha256: string): Promise<number | undefined> {
    const rows = (await this.query(`SELECT id FROM images WHERE ${SHA_PREFIX} = substr(?1, 1, 8) AND sha = ?1 ORDER BY id DESC LIMIT 1`, shaColumn(sha256))) as Array<{ id: number }>;
    return rows[0]?.id;
  }

  /** The ids stored under a caller key, in id order. */
  async idsByRef(ref: string): Promise<number[]> {
    return ((await this.query('SELECT id FROM image_refs WHERE ref = ? ORDER BY id', ref)) as Array<{ id: number }>).map((row) => row.id);
  }

  async ids(): Promise<number[]> {
    return ((await this.query('SELECT id FROM images ORDER BY id')) as Array<{ id: number }>).map((row) => row.id);
  }

  async count(): Promise<number> {
    return ((await this.query('SELECT count(*) AS n FROM images')) as Array<{ n: number }>)[0]?.n ?? 0;
  }

  /** Every record in id order, `size` at a time. */
  async *pages(size: number): AsyncGenerator<RecordValue[]> {
    let after = 0;
    for (;;) {
      const rows = (await this.query(`SELECT ${COLUMNS} FROM images WHERE id > ? ORDER BY id LIMIT ?`, after, size)) as ImageRow[];
      if (rows.length === 0) return;
      yield rows.map(toValue);
      after = rows[rows.length - 1].id;
    }
  }
}
