// Kills an ingesting or retraining engine process at seeded random moments and checks, after each kill, what the
// engine guarantees (docs/reliability.md): nothing acknowledged is lost, store and index agree, start-up
// reconciliation says what it repaired, an interrupted retrain leaves a complete model active.
import { fork } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { createEngine, namespaceDir, DEFAULT_NAMESPACE } from '../../src/index/engine.js';
import { vaeDir } from '../../src/index/namespace.js';
import { FeatureStore } from '../../src/index/store.js';
import { VectorIndex, indexFiles } from '../../src/index/vector-index.js';
import type { Logger } from '../../src/log.js';
import { loadVae } from '../../src/ml/vae-model.js';
import type { VaeHyperParams } from '../../src/ml/vae-train.js';
import type { ChildArgs, ChildMessage } from './protocol.js';

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));
/** Small enough to train in a second or two on a shared core; the crash test is about files, not quality. */
export const TINY_VAE: Partial<VaeHyperParams> = { epochs: 3, hidden: 32, latent: 8, seed: 1 };

export interface CrashOptions {
  workDir: string;
  /** Kills per scenario. */
  kills: number;
  seed: number;
  /** Images in the folder the ingest child works through (it resumes over the same folder after each kill). */
  images: number;
  /** Images stored before the retrain scenario starts (a retrain needs at least 114). */
  retrainImages: number;
  progress?: (line: string) => void;
}

export interface ScenarioReport {
  scenario: 'ingest' | 'retrain';
  kills: number;
  /** Runs that finished before their kill came (checked the same way). */
  completed: number;
  failures: string[];
  figures: Record<string, number>;
}

/** mulberry32: a fixed seed gives the same kill moments on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const RESUME_OVERLAP = 16;

function imageName(i: number): string {
  return `${String(i).padStart(5, '0')}.png`;
}

/** Distinct 64×64 PNGs: an 8×8 grid of random colours, blown up, so no two share features. */
export async function writePatternImages(dir: string, count: number, seed: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  const random = seededRandom(seed);
  for (let i = 0; i < count; i++) {
    const grid = Buffer.alloc(8 * 8 * 3);
    for (let j = 0; j < grid.length; j++) grid[j] = Math.floor(random() * 256);
    await sharp(grid, { raw: { width: 8, height: 8, channels: 3 } })
      .resize(64, 64, { kernel: 'nearest' })
      .png()
      .toFile(join(dir, imageName(i)));
  }
}

export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (message: string) => lines.push(`${level} ${message}`);
  return { lines, debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
}

interface ChildRun {
  messages: ChildMessage[];
  /** ms from fork to each message's arrival. */
  arrivals: number[];
  killed: boolean;
  /** ms from fork to exit. */
  elapsed: number;
  stderr: string;
}

/** When to kill: `delayMs` after the first message `on` accepts (progress, not wall time, so a slow machine aims alike). */
interface KillTrigger {
  on: (message: ChildMessage) => boolean;
  delayMs: number;
}

/** Forks the runner and SIGKILLs it as `trigger` says (unless it exits first); resolves once it has closed. */
function runChild(mode: 'ingest' | 'retrain', args: ChildArgs, trigger: KillTrigger | undefined): Promise<ChildRun> {
  const started = performance.now();
  const child = fork(CHILD, [mode, JSON.stringify(args)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  const messages: ChildMessage[] = [];
  const arrivals: number[] = [];
  let stderr = '';
  let killed = false;
  let timer: NodeJS.Timeout | undefined;
  child.on('message', (m) => {
    const message = m as ChildMessage;
    messages.push(message);
    arrivals.push(performance.now() - started);
    if (trigger && !timer && trigger.on(message)) timer = setTimeout(() => child.kill('SIGKILL'), trigger.delayMs);
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    // 'close' comes after the IPC channel has drained, so every message the child got out is in `messages`.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      killed = signal === 'SIGKILL';
      if (!killed && code !== 0) reject(new Error(`crash-test child (${mode}) exited with ${code}: ${stderr.slice(-2000)}`));
      else resolve({ messages, arrivals, killed, elapsed: performance.now() - started, stderr });
    });
  });
}

const TEMP_REMOVED = /removed (\d+) temporary files an interrupted write left/;
const RECONCILED = /index reconciled with the store \((\d+) added, (\d+) dropped\)/;

/** What the saved index held before the engine reopened it: its ids, or why it will be rebuilt. */
async function savedIndexIds(dir: string, keyId: string): Promise<Set<number> | 'none' | 'corrupt'> {
  try {
    const index = await VectorIndex.load(dir, keyId);
    return index ? new Set(index.ids()) : 'none';
  } catch {
    return 'corrupt';
  }
}

export async function runIngestScenario(options: CrashOptions): Promise<ScenarioReport> {
  const dataDir = join(options.workDir, 'ingest-data');
  const imagesDir = join(options.workDir, 'ingest-images');
  await writePatternImages(imagesDir, options.images, options.seed);
  const dir = namespaceDir(dataDir, DEFAULT_NAMESPACE);
  const random = seededRandom(options.seed + 1);
  const acknowledged = new Map<number, string>();
  const acknowledgedNames = new Set<string>();
  const failures: string[] = [];
  const figures = { acknowledged: 0, reconciledAdded: 0, reconciledDropped: 0, rebuiltFromStore: 0, tempFilesRemoved: 0, restarts: 0, killedBeforeFirstAck: 0 };
  let kills = 0;
  let completed = 0;

  while (kills < options.kills) {
    // Start-up (model load) takes one to three seconds on a busy machine; after it, the 2 s index save timer
    // makes later moments interesting too.
    const delay = random() * 5000;
    // Resume a little before the first image not yet acknowledged: those few come back as duplicates (checked
    // below) without spending every run's short life re-reading the whole folder.
    let firstOpen = 0;
    while (firstOpen < options.images && acknowledgedNames.has(imageName(firstOpen))) firstOpen += 1;
    const from = Math.max(0, firstOpen - RESUME_OVERLAP);
    const run = await runChild('ingest', { dataDir, imagesDir, concurrency: 4, from }, { on: (m) => m.type === 'started', delayMs: delay });
    if (run.killed) kills += 1;
    else completed += 1;
    figures.restarts += 1;
    const acks = run.messages.filter((m): m is Extract<ChildMessage, { type: 'ack' }> => m.type === 'ack');
    if (acks.length === 0) figures.killedBeforeFirstAck += 1;
    for (const ack of acks) {
      const known = acknowledged.get(ack.id);
      if (known !== undefined && known !== ack.sha256) failures.push(`run ${figures.restarts}: id ${ack.id} acknowledged for two images`);
      acknowledged.set(ack.id, ack.sha256);
      acknowledgedNames.add(ack.name);
    }
    const firstAck = run.arrivals[run.messages.findIndex((m) => m.type === 'ack')];
    const label = `run ${figures.restarts} (${run.killed ? `killed ${Math.round(delay)} ms after start-up` : 'completed'}, ${acks.length} acks${firstAck ? ` from ${Math.round(firstAck)} ms` : ''})`;

    const before = await savedIndexIds(dir, 'raw');
    const logger = recordingLogger();
    const engine = createEngine({ dataDir, logger });
    const stats = await engine.stats();
    await engine.close();

    const store = await FeatureStore.open(join(dir, 'store.sqlite'));
    const stored = new Map<number, { sha256: string; features: Float32Array }>();
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
      for (const [id, image] of stored) {
        if (index.search(image.features, 1)[0]?.id !== id) failures.push(`${label}: image ${id} is not its own nearest neighbour`);
      }
    }

    // The reconciliation line must match what the store and the pre-restart index file actually differed by.
    const previous = before instanceof Set ? before : new Set<number>();
    const expectAdded = [...stored.keys()].filter((id) => !previous.has(id)).length;
    const expectDropped = [...previous].filter((id) => !stored.has(id)).length;
    const line = logger.lines.map((l) => RECONCILED.exec(l)).find(Boolean);
    const reported = line ? { added: Number(line[1]), dropped: Number(line[2]) } : { added: 0, dropped: 0 };
    if (reported.added !== expectAdded || reported.dropped !== expectDropped) {
      failures.push(`${label}: reconciliation reported ${JSON.stringify(reported)}, expected ${expectAdded} added, ${expectDropped} dropped`);
    }
    if (before === 'corrupt') {
      figures.rebuiltFromStore += 1;
      if (!logger.lines.some((l) => l.startsWith('warn') && /Rebuilding it from the store/.test(l))) {
        failures.push(`${label}: an index file that did not verify was rebuilt without a warning`);
      }
    }
    figures.tempFilesRemoved += Number(logger.lines.map((l) => TEMP_REMOVED.exec(l)).find(Boolean)?.[1] ?? 0);
    const stray = await strayFiles(dataDir, 'raw');
    if (stray.length > 0) failures.push(`${label}: files left over after the restart: ${stray.join(', ')}`);
    figures.reconciledAdded += reported.added;
    figures.reconciledDropped += reported.dropped;
    options.progress?.(`ingest ${label}: store ${stored.size}, reconciled +${reported.added}/-${reported.dropped}${before === 'corrupt' ? ', rebuilt' : ''}`);
  }
  figures.acknowledged = acknowledged.size;
  return { scenario: 'ingest', kills, completed, failures, figures };
}

export async function runRetrainScenario(options: CrashOptions): Promise<ScenarioReport> {
  const dataDir = join(options.workDir, 'retrain-data');
  const imagesDir = join(options.workDir, 'retrain-images');
  await writePatternImages(imagesDir, options.retrainImages, options.seed + 2);
  await runChild('ingest', { dataDir, imagesDir, concurrency: 4 }, undefined);
  const dir = namespaceDir(dataDir, DEFAULT_NAMESPACE);
  const random = seededRandom(options.seed + 3);
  const failures: string[] = [];
  const figures = { images: options.retrainImages, calibrationMs: 0, switchMs: 0, killedBeforeSwap: 0, killedDuringSwap: 0, swappedBeforeKill: 0, mostStrayFiles: 0, tempFilesRemoved: 0 };
  const args: ChildArgs = { dataDir, vaeHyper: TINY_VAE };

  // One uninterrupted retrain: its length sets the window kills are drawn from, and from then on the previous key
  // is a VAE, so every kill also exercises loading one.
  const calibration = await runChild('retrain', args, undefined);
  figures.calibrationMs = Math.round(calibration.elapsed);
  const startedAt = calibration.arrivals[calibration.messages.findIndex((m) => m.type === 'started')];
  const swapAt = calibration.arrivals[calibration.messages.findIndex((m) => m.type === 'phase' && m.phase === 'swapping')];
  const switchedAt = calibration.arrivals[calibration.messages.findIndex((m) => m.type === 'retrained')];
  figures.switchMs = Math.round(switchedAt - swapAt);
  let previousKey = (await readActive(dataDir)).key;
  let kills = 0;
  let completed = 0;
  let run = 0;

  while (kills < options.kills) {
    run += 1;
    // Half the kills anywhere from start-up to the end of training, half aimed at the short stretch from the
    // switch on (VAE saved, index saved, key committed, old files removed): 80–450 ms in the measured runs.
    const aim = random() < 0.5 ? 'started' : 'swapping';
    const delay = aim === 'started' ? random() * (swapAt - startedAt) : random() * 1.2 * (switchedAt - swapAt);
    const result = await runChild('retrain', args, { on: (m) => m.type === aim || (m.type === 'phase' && m.phase === aim), delayMs: delay });
    if (result.killed) kills += 1;
    else completed += 1;
    const phases = result.messages.flatMap((m) => (m.type === 'phase' ? [m.phase] : []));
    const finished = result.messages.find((m): m is Extract<ChildMessage, { type: 'retrained' }> => m.type === 'retrained');
    const label = `run ${run} (${result.killed ? `killed ${Math.round(delay)} ms after ${aim}` : 'completed'}, last phase ${phases.at(-1) ?? 'none'})`;

    const active = await readActive(dataDir);
    failures.push(...active.failures.map((f) => `${label}: ${f}`));
    if (finished && active.key !== finished.key) failures.push(`${label}: the retrain finished with ${finished.key} but ${active.key} is active`);
    if (active.key !== previousKey && !phases.includes('swapping')) {
      failures.push(`${label}: the key changed to ${active.key} before the retrain reached its switch`);
    }
    if (active.key === previousKey && phases.includes('swapping')) figures.killedDuringSwap += 1;
    else if (active.key !== previousKey && !finished) figures.swappedBeforeKill += 1;
    else if (!finished) figures.killedBeforeSwap += 1;
    if (active.key.startsWith('vae-')) {
      const model = await loadVae(vaeDir(dir, active.key.slice(4))).catch((error: Error) => error);
      if (model instanceof Error) failures.push(`${label}: the active VAE does not load: ${model.message}`);
      const index = await VectorIndex.load(dir, active.key).catch((error: Error) => error);
      if (!index || index instanceof Error) failures.push(`${label}: the active index does not load after a clean close`);
    }
    figures.tempFilesRemoved += active.tempFilesRemoved;
    const stray = await strayFiles(dataDir, active.key);
    // A killed candidate's VAE and index stay until the next completed switch; half-written files never do.
    if (stray.some((name) => name.includes('.tmp-'))) failures.push(`${label}: temporary files survived the restart: ${stray.join(', ')}`);
    figures.mostStrayFiles = Math.max(figures.mostStrayFiles, stray.length);
    // Whatever earlier kills left behind must be gone once a retrain has completed its switch.
    if (finished && stray.length > 0) failures.push(`${label}: files left over after a completed retrain: ${stray.join(', ')}`);
    options.progress?.(`retrain ${label}: active ${active.key}${active.key === previousKey ? '' : ' (new)'}${stray.length ? `, stray ${stray.join(' ')}` : ''}`);
    previousKey = active.key;
  }
  return { scenario: 'retrain', kills, completed, failures, figures };
}

/** Opens the engine as a restarted process would; checks that the active key loads completely and answers. */
async function readActive(dataDir: string): Promise<{ key: string; failures: string[]; tempFilesRemoved: number }> {
  const logger = recordingLogger();
  const engine = createEngine({ dataDir, logger });
  const failures: string[] = [];
  try {
    const stats = await engine.stats();
    if (stats.indexed !== stats.images) failures.push(`${stats.indexed} of ${stats.images} images indexed`);
    const answer = await engine.query({ id: 1 }, { k: 5 });
    if (answer.hits.length !== 5 || answer.key !== stats.key) failures.push(`a query answered ${answer.hits.length} hits from ${answer.key}`);
    // A partial file would show up here as a failed checksum or an unloadable model.
    for (const line of logger.lines) if (/^(warn|error)/.test(line)) failures.push(`start-up: ${line}`);
    return { key: stats.key, failures, tempFilesRemoved: Number(logger.lines.map((l) => TEMP_REMOVED.exec(l)).find(Boolean)?.[1] ?? 0) };
  } finally {
    await engine.close();
  }
}

/** Files in the namespace that belong to no active part: what interrupted retrains left behind. */
export async function strayFiles(dataDir: string, activeKey: string): Promise<string[]> {
  const dir = namespaceDir(dataDir, DEFAULT_NAMESPACE);
  const index = await indexFiles(dir, activeKey);
  const named = [index.manifest, index.graph, index.flat].filter((path) => path !== undefined).map((path) => basename(path));
  const keep = new Set(['store.sqlite', 'store.sqlite-wal', 'store.sqlite-shm', 'vae', ...named]);
  const vaes = await readdir(join(dir, 'vae')).catch(() => [] as string[]);
  const top = (await readdir(dir)).filter((name) => !keep.has(name));
  return [...top, ...vaes.filter((v) => `vae-${v}` !== activeKey).map((v) => `vae/${v}`)];
}
