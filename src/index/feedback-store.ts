/**
 * A namespace's relevance feedback, kept in its store file beside the images (keyv keys):
 * `fb:<asker>|<query>|<result>` → one judgement (the latest of that asker on that result for that query), and
 * `fbi:<image id>|<fb key>` for the query image and the result, so that a judgement leaves with either image in the
 * transaction that deletes it. `<query>` is `q<id>` for a stored query image, or `f<hash>` of the features of a
 * query that was never stored (an upload), whose features the judgement then keeps.
 */
import { createHash } from 'node:crypto';
import type Keyv from 'keyv';
import { decodeFloat16, encodeFloat16 } from '../util/float16.js';
import type { JudgedPairs } from './key-signals.js';

export type FeedbackQuery = { id: number } | { features: Float32Array };

export interface Judgement {
  /** Who judged (the bot: a user id). Only what they were shown. */
  asker: string;
  query: FeedbackQuery;
  result: number;
  sign: 1 | -1;
  /** The index key the judged answer came from (`raw`, `vae-…`, `pca…`, `lw…`). */
  key: string;
}

export interface StoredJudgement {
  asker: string;
  /** The query image's id, when the query was a stored image. */
  queryId?: number;
  /** base64 float16 features of a query that was not stored. */
  queryF16?: string;
  result: number;
  sign: 1 | -1;
  key: string;
  at: string;
}

type Query = (sql: string, ...args: unknown[]) => Promise<unknown>;

/** At most this many liked/disliked pairs go to the retrain gate: the check is a few dot products per pair. */
const MAX_PAIRS = 5000;

export class FeedbackStore {
  constructor(
    private readonly keyv: Keyv,
    private readonly query: Query,
    /** How keyv prefixes this store's keys in the table (its namespace). */
    private readonly prefix: string,
    private readonly table: string,
    private readonly features: (id: number) => Promise<Float32Array | undefined>,
    /** Whether the image is stored. */
    private readonly exists: (id: number) => Promise<boolean>,
    /** Runs `work` as one transaction under the store's write lock. */
    private readonly transaction: <T>(work: () => Promise<T>) => Promise<T>,
  ) {}

  /** Stores a judgement (replacing the asker's earlier one on the same result for the same query). False if an image is gone. */
  async record(judgement: Judgement): Promise<boolean> {
    const { asker, query, result, sign, key } = judgement;
    const queryId = 'id' in query ? query.id : undefined;
    const value: StoredJudgement = {
      asker,
      ...(queryId === undefined ? { queryF16: encodeFloat16((query as { features: Float32Array }).features).toString('base64') } : { queryId }),
      result,
      sign,
      key,
      at: new Date().toISOString(),
    };
    const tag = queryId === undefined ? `f${createHash('sha256').update(value.queryF16!).digest('hex').slice(0, 24)}` : `q${queryId}`;
    const fbKey = `fb:${asker}|${tag}|${result}`;
    // Checked in the transaction, so a judgement can never outlive an image deleted just before it.
    return this.transaction(async () => {
      if (!(await this.exists(result)) || (queryId !== undefined && !(await this.exists(queryId)))) return false;
      await this.keyv.set(fbKey, value);
      for (const id of queryId === undefined ? [result] : [queryId, result]) await this.keyv.set(`fbi:${id}|${fbKey}`, 1);
      return true;
    });
  }

  /** Every judgement of the namespace (a full scan: for the retrain gate and checks). */
  async all(): Promise<StoredJudgement[]> {
    return this.values(await this.keysAfter('fb:'));
  }

  /** Removes the judgements naming the image, as query or as result. Call inside the transaction that deletes it. */
  async removeImage(id: number): Promise<number> {
    const fbKeys = (await this.keysAfter(`fbi:${id}|`)).map((k) => k.slice(`fbi:${id}|`.length));
    for (const fbKey of fbKeys) await this.removeOne(fbKey);
    return fbKeys.length;
  }

  /** Removes every judgement the asker made (`/forget-me`). */
  async removeAsker(asker: string): Promise<number> {
    return this.transaction(async () => {
      const fbKeys = await this.keysAfter(`fb:${asker}|`);
      for (const fbKey of fbKeys) await this.removeOne(fbKey);
      return fbKeys.length;
    });
  }

  /**
   * The judgements as labelled evidence for the retrain gate: for every asker's query, each liked result paired with
   * each disliked one. Judgements whose images have gone meanwhile are skipped.
   */
  async judgedPairs(dim: number): Promise<JudgedPairs> {
    const groups = new Map<string, { query: () => Promise<Float32Array | undefined>; liked: number[]; disliked: number[] }>();
    for (const j of await this.all()) {
      const tag = `${j.asker}|${j.queryId ?? j.queryF16}`;
      let group = groups.get(tag);
      if (!group) {
        const stored = j.queryF16;
        const queryId = j.queryId;
        const query = async () => (stored !== undefined ? decodeFloat16(Buffer.from(stored, 'base64')) : this.features(queryId!));
        group = { query, liked: [], disliked: [] };
        groups.set(tag, group);
      }
      (j.sign > 0 ? group.liked : group.disliked).push(j.result);
    }
    const rows: Float32Array[] = [];
    const rowOf = new Map<number, number>();
    const imageRow = async (id: number): Promise<number | undefined> => {
      if (rowOf.has(id)) return rowOf.get(id);
      const f = await this.features(id);
      if (!f) return undefined;
      rows.push(f);
      rowOf.set(id, rows.length - 1);
      return rows.length - 1;
    };
    const pairs: number[] = [];
    for (const group of groups.values()) {
      if (group.liked.length === 0 || group.disliked.length === 0) continue;
      const q = await group.query();
      if (!q) continue;
      rows.push(q);
      const qRow = rows.length - 1;
      for (const l of group.liked) {
        for (const d of group.disliked) {
          const [lRow, dRow] = [await imageRow(l), await imageRow(d)];
          if (lRow !== undefined && dRow !== undefined && pairs.length < 3 * MAX_PAIRS) pairs.push(qRow, lRow, dRow);
        }
      }
    }
    const features = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => features.set(r, i * dim));
    return { features, rows: rows.length, pairs: Int32Array.from(pairs) };
  }

  private async removeOne(fbKey: string): Promise<void> {
    const value = await this.keyv.get<StoredJudgement>(fbKey);
    await this.keyv.delete(fbKey);
    if (!value) return;
    for (const id of [value.queryId, value.result]) if (id !== undefined) await this.keyv.delete(`fbi:${id}|${fbKey}`);
  }

  private async values(keys: string[]): Promise<StoredJudgement[]> {
    const values = keys.length === 0 ? [] : await this.keyv.getMany<StoredJudgement>(keys);
    return values.filter((v): v is StoredJudgement => v !== undefined && v !== null);
  }

  /** The keys (without keyv's prefix) that start with `start`: a range scan on the primary key. */
  private async keysAfter(start: string): Promise<string[]> {
    const from = `${this.prefix}${start}`;
    const rows = (await this.query(`SELECT key FROM ${this.table} WHERE key > ? AND key < ? ORDER BY key`, from, `${from}\uffff`)) as Array<{ key: string }>;
    return rows.map((row) => row.key.slice(this.prefix.length));
  }
}
