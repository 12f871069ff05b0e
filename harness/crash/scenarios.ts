// Kills an ingesting or retraining engine process at seeded random moments and checks, after each kill, what the
// engine guarantees (docs/reliability.md): nothing acknowledged is lost, store and index agree, start-up
// reconciliation says what it repaired, an interrupted retrain leaves a complete model active.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { createEngine, namespaceDir, DEFAULT_NAMESPACE } from '../../src/index/engine.js';
import { vaeDir } from '../../src/index/namespace.js';
import { VectorIndex } from '../../src/index/vector-index.js';
import { isLinearKeyId } from '../../src/ml/linear-key.js';
import { loadVae } from '../../src/ml/vae-files.js';
import type { VaeHyperParams } from '../../src/ml/vae-hyper.js';
import { mulberry32 } from '../../src/util/random.js';
import type { ChildArgs, ChildMessage } from './protocol.js';
import { checkAfterRestart, recordingLogger, strayFiles, tempFilesRemoved } from './restart-check.js';
import { runChild, type ChildRun, type KillTrigger } from './run-child.js';

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
  /** Messages in each channel history the backfill scenario reads (it starts another until enough kills landed). */
  backfillMessages: number;
  progress?: (line: string) => void;
}

export interface ScenarioReport {
  scenario: 'ingest' | 'retrain' | 'backfill';
  kills: number;
  /** Runs that finished before their kill came (checked the same way). */
  completed: number;
  failures: string[];
  figures: Record<string, number>;
}

const RESUME_OVERLAP = 16;

function imageName(i: number): string {
  return `${String(i).padStart(5, '0')}.png`;
}

/** A distinct 64×64 PNG: an 8×8 grid of random colours, blown up, so no two share features. */
export function patternImage(random: () => number): Promise<Buffer> {
  const grid = Buffer.alloc(8 * 8 * 3);
  for (let j = 0; j < grid.length; j++) grid[j] = Math.floor(random() * 256);
  return sharp(grid, { raw: { width: 8, height: 8, channels: 3 } }).resize(64, 64, { kernel: 'nearest' }).png().toBuffer();
}

export async function writePatternImages(dir: string, count: number, seed: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  const random = mulberry32(seed);
  for (let i = 0; i < count; i++) await writeFile(join(dir, imageName(i)), await patternImage(random));
}

/** Forks the engine child (child.ts) in `mode`. */
function runEngineChild(mode: 'ingest' | 'retrain', args: ChildArgs, trigger: KillTrigger<ChildMessage> | undefined): Promise<ChildRun<ChildMessage>> {
  return runChild(CHILD, [mode, JSON.stringify(args)], trigger);
}

export async function runIngestScenario(options: CrashOptions): Promise<ScenarioReport> {
  const dataDir = join(options.workDir, 'ingest-data');
  const imagesDir = join(options.workDir, 'ingest-images');
  await writePatternImages(imagesDir, options.images, options.seed);
  const random = mulberry32(options.seed + 1);
  const acknowledged = new Map<number, string>();
  const acknowledgedNames = new Set<string>();
  const failures: string[] = [];
  const figures = { acknowledged: 0, reconciledAdded: 0, reconciledDropped: 0, rebuiltFromStore: 0, tempFilesRemoved: 0, graphMisses: 0, restarts: 0, killedBeforeFirstAck: 0 };
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
    const run = await runEngineChild('ingest', { dataDir, imagesDir, concurrency: 4, from }, { on: (m) => m.type === 'started', delayMs: delay });
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

    const restart = await checkAfterRestart(dataDir, DEFAULT_NAMESPACE, acknowledged, label);
    failures.push(...restart.failures);
    if (restart.rebuilt) figures.rebuiltFromStore += 1;
    figures.tempFilesRemoved += restart.tempFilesRemoved;
    figures.graphMisses += restart.graphMisses;
    figures.reconciledAdded += restart.reconciled.added;
    figures.reconciledDropped += restart.reconciled.dropped;
    options.progress?.(`ingest ${label}: store ${restart.stored.size}, reconciled +${restart.reconciled.added}/-${restart.reconciled.dropped}${restart.rebuilt ? ', rebuilt' : ''}`);
  }
  figures.acknowledged = acknowledged.size;
  return { scenario: 'ingest', kills, completed, failures, figures };
}

export async function runRetrainScenario(options: CrashOptions): Promise<ScenarioReport> {
  const dataDir = join(options.workDir, 'retrain-data');
  const imagesDir = join(options.workDir, 'retrain-images');
  await writePatternImages(imagesDir, options.retrainImages, options.seed + 2);
  await runEngineChild('ingest', { dataDir, imagesDir, concurrency: 4 }, undefined);
  const dir = namespaceDir(dataDir, DEFAULT_NAMESPACE);
  const random = mulberry32(options.seed + 3);
  const failures: string[] = [];
  const figures = { images: options.retrainImages, calibrationMs: 0, switchMs: 0, killedBeforeSwap: 0, killedDuringSwap: 0, swappedBeforeKill: 0, mostStrayFiles: 0, tempFilesRemoved: 0 };
  const args: ChildArgs = { dataDir, vaeHyper: TINY_VAE };

  // One uninterrupted retrain: its length sets the window kills are drawn from, and from then on the previous key
  // is a VAE, so every kill also exercises loading one.
  const calibration = await runEngineChild('retrain', args, undefined);
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
    const result = await runEngineChild('retrain', args, { on: (m) => m.type === aim || (m.type === 'phase' && m.phase === aim), delayMs: delay });
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
    if (active.key.startsWith('vae-') || isLinearKeyId(active.key)) {
      const model = await loadVae(vaeDir(dir, isLinearKeyId(active.key) ? active.key : active.key.slice(4))).catch((error: Error) => error);
      if (model instanceof Error) failures.push(`${label}: the active VAE does not load: ${model.message}`);
      const index = await VectorIndex.load(dir, active.key).catch((error: Error) => error);
      if (!index || index instanceof Error) failures.push(`${label}: the active index does not load after a clean close`);
    }
    figures.tempFilesRemoved += active.tempFilesRemoved;
    const stray = await strayFiles(dataDir, active.key, DEFAULT_NAMESPACE);
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
    return { key: stats.key, failures, tempFilesRemoved: tempFilesRemoved(logger.lines) };
  } finally {
    await engine.close();
  }
}
