// What every crash scenario checks of a namespace after its writer was killed: the engine reopens it as a restarted
// process would, and the store, the index file and the start-up log must agree with each other and with what the
// killed process had acknowledged.
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createEngine, namespaceDir } from '../../src/index/engine.js';
import { FeatureStore, type StoredImage } from '../../src/index/store.js';
import { FlatVectors } from '../../src/index/flat-vectors.js';
import { VectorIndex, indexFiles } from '../../src/index/vector-index.js';
import type { Logger } from '../../src/log.js';

export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (message: string) => lines.push(`${level} ${message}`);
  return { lines, debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
}

const TEMP_REMOVED = /removed (\d+) temporary files an interrupted write left/;
const RECONCILED = /index reconciled with the store \((\d+) added, (\d+) dropped\)/;

export function tempFilesRemoved(lines: string[]): number {
  return Number(lines.map((l) => TEMP_REMOVED.exec(l)).find(Boolean)?.[1] ?? 0);
}

/** What the saved index held before the engine reopened it: its ids, or why it will be rebuilt. */
async function savedIndexIds(dir: string, keyId: string): Promise<Set<number> | 'none' | 'corrupt'> {
  try {
    const index = await VectorIndex.load(dir, keyId);
    return index ? new Set(index.ids()) : 'none';
  } catch {
    return 'corrupt';
  }
}

export interface RestartFindings {
  failures: string[];
  /** The store after the restart, by id. */
  stored: Map<number, StoredImage>;
  /** What start-up reconciliation reported (and was checked against the files). */
  reconciled: { added: number; dropped: number };
  /** The index file did not verify and was rebuilt from the store. */
  rebuilt: boolean;
  tempFilesRemoved: number;
  /** Stored images the HNSW graph did not return for their own vector although the exact search over the index's vectors did. */
  graphMisses: number;
}

/**
 * Reopens `namespace` (raw key) after a kill, closes it cleanly, and checks: every acknowledged image (id → sha256) is
 * stored; no two stored images share bytes; stats count every image as indexed; the saved index holds exactly the
 * stored ids and finds each as its own nearest neighbour (the exact search over its vectors when the graph does not); reconciliation reports exactly what the store and the
 * index file differed by; an unverifiable index file was rebuilt with a warning; no file is left over.
 */
export async function checkAfterRestart(dataDir: string, namespace: string, acknowledged: Map<number, string>, label: string): Promise<RestartFindings> {
  const dir = namespaceDir(dataDir, namespace);
  const failures: string[] = [];
  let graphMisses = 0;
  const before = await savedIndexIds(dir, 'raw');
  const logger = recordingLogger();
  const engine = createEngine({ dataDir, logger });
  const stats = await engine.stats(namespace);
  await engine.close();

  const store = await FeatureStore.open(join(dir, 'store.sqlite'));
  const stored = new Map<number, StoredImage>();
  for await (const image of store.scan()) stored.set(image.id, image);
  await store.close();
  const index = await VectorIndex.load(dir, 'raw').catch((error: Error) => error);

  for (const [id, sha] of acknowledged) {
    if (stored.get(id)?.sha256 !== sha) failures.push(`${label}: acknowledged image ${id} is not in the store`);
  }
  if (new Set([...stored.values()].map((s) => s.sha256)).size !== stored.size) failures.push(`${label}: the store holds a duplicate`);
  if (stats.images !== stored.size || stats.indexed !== stats.images) {
    failures.push(`${label}: stats say ${stats.images} images, ${stats.indexed} indexed; the store holds ${stored.size}`);
  }
  if (index instanceof Error || (index === null && stored.size > 0)) {
    failures.push(`${label}: the index did not load after a clean close: ${index instanceof Error ? index.message : 'no file'}`);
  } else if (index) {
    const graph = await index.ready();
    if (graph.state !== 'loaded') failures.push(`${label}: the graph saved at a clean close did not load: ${graph.reason}`);
    const ids = new Set(index.ids());
    for (const id of stored.keys()) if (!ids.has(id)) failures.push(`${label}: stored image ${id} is missing from the index`);
    for (const id of ids) if (!stored.has(id)) failures.push(`${label}: the index holds ghost ${id}`);
    // HNSW is approximate: among ~7,000 near-identical noise images one node was out of the graph's reach at ef 100
    // (found at ef 400), so a graph miss is counted, and only an image the exact search misses too is a failure.
    const files = await indexFiles(dir, 'raw');
    const exact = files.flat ? FlatVectors.fromBytes(await readFile(files.flat), index.dim) : undefined;
    for (const [id, image] of stored) {
      if (index.search(image.features, 1)[0]?.id === id) continue;
      if (exact?.search(image.features, 1)[0]?.id === id) graphMisses += 1;
      else failures.push(`${label}: image ${id} is not its own nearest neighbour`);
    }
  }

  // The reconciliation line must match what the store and the pre-restart index file actually differed by.
  const previous = before instanceof Set ? before : new Set<number>();
  const expectAdded = [...stored.keys()].filter((id) => !previous.has(id)).length;
  const expectDropped = [...previous].filter((id) => !stored.has(id)).length;
  const line = logger.lines.map((l) => RECONCILED.exec(l)).find(Boolean);
  const reconciled = line ? { added: Number(line[1]), dropped: Number(line[2]) } : { added: 0, dropped: 0 };
  if (reconciled.added !== expectAdded || reconciled.dropped !== expectDropped) {
    failures.push(`${label}: reconciliation reported ${JSON.stringify(reconciled)}, expected ${expectAdded} added, ${expectDropped} dropped`);
  }
  const rebuilt = before === 'corrupt';
  if (rebuilt && !logger.lines.some((l) => l.startsWith('warn') && /Rebuilding it from the store/.test(l))) {
    failures.push(`${label}: an index file that did not verify was rebuilt without a warning`);
  }
  const stray = await strayFiles(dataDir, 'raw', namespace);
  if (stray.length > 0) failures.push(`${label}: files left over after the restart: ${stray.join(', ')}`);
  return { failures, stored, reconciled, rebuilt, tempFilesRemoved: tempFilesRemoved(logger.lines), graphMisses };
}

/** Files in the namespace that belong to no active part: what interrupted retrains left behind. */
export async function strayFiles(dataDir: string, activeKey: string, namespace: string): Promise<string[]> {
  const dir = namespaceDir(dataDir, namespace);
  const index = await indexFiles(dir, activeKey);
  const named = [index.manifest, index.graph, index.flat].filter((path) => path !== undefined).map((path) => basename(path));
  const keep = new Set(['store.sqlite', 'store.sqlite-wal', 'store.sqlite-shm', 'vae', ...named]);
  const vaes = await readdir(join(dir, 'vae')).catch(() => [] as string[]);
  const top = (await readdir(dir)).filter((name) => !keep.has(name));
  // A VAE's key id is `vae-<id>`; a linear key (PCA, learned whitening) is named by its id alone.
  return [...top, ...vaes.filter((v) => `vae-${v}` !== activeKey && v !== activeKey).map((v) => `vae/${v}`)];
}
