#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { collectImageFiles } from './cli/collect-files.js';
import { renderCollage } from './collage.js';
import { loadEngineConfig, type EngineConfig } from './config.js';
import { isAppError } from './errors.js';
import { createEngine, DEFAULT_K, DEFAULT_NAMESPACE, type Engine, type RetrainSummary } from './index/engine.js';
import { createStderrLogger } from './log.js';
import { exportNamespace, importNamespace } from './data-move.js';

/** How many images are read and decoded while the model works on earlier ones. */
const IN_FLIGHT = 4;

interface GlobalOptions {
  dataDir?: string;
  namespace: string;
}

const program = new Command()
  .name('relevant')
  .description('Find the images in a collection that are relevant to a given image, by content alone.')
  .option('-d, --data-dir <dir>', 'where the store, index and models live (env DATA_DIR, default ./data)')
  .option('-n, --namespace <name>', 'which collection to use', DEFAULT_NAMESPACE)
  .showHelpAfterError();

program
  .command('index')
  .description('index images (folders are searched recursively); exact duplicates are skipped')
  .argument('<paths...>', 'image files or folders')
  .option('--no-retrain', 'do not train the collection’s own model even when enough images are indexed')
  .action(async (paths: string[], options: { retrain: boolean }, command: Command) => {
    await withEngine(command, async (engine, global, config) => {
      const code = await indexFiles(engine, global.namespace, paths);
      const stats = await engine.stats(global.namespace);
      if (options.retrain && stats.retrainDue && config.retrainPolicy) {
        console.log(`The collection has ${stats.images} images: training its own model (disable with --no-retrain or AUTO_RETRAIN=false).`);
        printRetrain(await runRetrain(engine, global.namespace));
      }
      return code;
    });
  });

program
  .command('query')
  .description('print the indexed images most relevant to an image')
  .argument('<image>', 'the image to search with')
  .option('-k, --k <count>', 'how many results', parseCount, DEFAULT_K)
  .option('--collage <file>', 'also write an overview image (PNG if the name ends in .png, else JPEG): the query first, then numbered results')
  .option('--json', 'print JSON instead of a table')
  .action(async (image: string, options: { k: number; collage?: string; json?: boolean }, command: Command) => {
    await withEngine(command, async (engine, global) => {
      const bytes = await readFile(image);
      const result = await engine.query(bytes, { namespace: global.namespace, k: options.k });
      if (options.json) {
        console.log(JSON.stringify({ key: result.key, hits: result.hits.map((h) => ({ id: h.record.id, path: h.record.source, score: round(h.score) })) }, null, 2));
      } else if (result.hits.length === 0) {
        console.log('No indexed images yet: index some with `relevant index <folder>`.');
      } else {
        result.hits.forEach((hit, i) => console.log(`${String(i + 1).padStart(3)}  ${hit.score.toFixed(3)}  ${displayPath(hit.record.source)}`));
      }
      if (options.collage) {
        const tiles = await Promise.all(
          result.hits.map(async (hit) => ({
            // The stored thumbnail stands in for an original that has moved since it was indexed.
            bytes: await readFile(hit.record.source).catch(() => engine.thumbnail(hit.record.id, { namespace: global.namespace })),
            caption: hit.score.toFixed(3),
          })),
        );
        await writeFile(options.collage, await renderCollage({ bytes, caption: 'query' }, tiles, { format: /\.png$/i.test(options.collage) ? 'png' : 'jpeg' }));
        if (!options.json) console.log(`Collage written to ${options.collage}`);
      }
      return 0;
    });
  });

program
  .command('retrain')
  .description('fit the collection’s own keys (VAE, PCA-64, whitening learned from edited thumbnails); switch to the best that passes the quality check')
  .option('--force', 'switch to the new model even if the quality check prefers the current one')
  .action(async (options: { force?: boolean }, command: Command) => {
    await withEngine(command, async (engine, global) => {
      const summary = await runRetrain(engine, global.namespace, options.force ?? false);
      printRetrain(summary);
      return summary.swapped ? 0 : 3;
    });
  });

program
  .command('stats')
  .description('show counts, model versions and sizes on disk')
  .option('--json', 'print JSON')
  .action(async (options: { json?: boolean }, command: Command) => {
    await withEngine(command, async (engine, global) => {
      const stats = await engine.stats(global.namespace);
      if (options.json) {
        console.log(JSON.stringify(stats, null, 2));
        return 0;
      }
      console.log(`collection     ${stats.namespace}`);
      console.log(`images         ${stats.images} (index holds ${stats.indexed})`);
      console.log(`feature model  ${stats.featureModel}`);
      console.log(`index key      ${stats.key}${stats.vae ? '' : ' (raw MobileNetV2 features: no VAE trained yet)'}`);
      if (stats.vae) console.log(`VAE            ${stats.vae.id}, trained ${stats.vae.created} on ${stats.vae.trainingSize} images, ${stats.vae.activeUnits}/${stats.vae.latentDim} active units`);
      console.log(`on disk        index ${formatBytes(stats.indexBytes)}, store ${formatBytes(stats.storeBytes)}`);
      if (stats.trial) console.log(`style trial   ${stats.trial.candidate}: favoured in ${stats.trial.candidateWins} judged answers, the current key in ${stats.trial.currentWins}`);
      if (stats.retrainDue) console.log('A retrain is due: run `relevant retrain`.');
      return 0;
    });
  });

program
  .command('export')
  .description('write one collection (images, index, models, and the bot’s settings for that server) to one file, to move it to another machine; stop the bot serving it first. The collection is then marked as moved and no longer served here')
  .argument('<file>', 'the file to write')
  .action(async (file: string, _options: unknown, command: Command) => {
    const global = command.optsWithGlobals<GlobalOptions>();
    const moved = await exportNamespace(configOf(global).dataDir, global.namespace, file);
    console.log(`Exported ${moved.namespace}: ${moved.files} files, ${formatBytes(moved.bytes)}, ${moved.settings} settings rows, to ${file}. It is marked as moved and no longer served from here.`);
  });

program
  .command('import')
  .description('read a file written by `export` into this data folder, after checking every checksum; stop the bot first')
  .argument('<file>', 'the exported file')
  .action(async (file: string, _options: unknown, command: Command) => {
    const moved = await importNamespace(configOf(command.optsWithGlobals<GlobalOptions>()).dataDir, file);
    console.log(`Imported ${moved.namespace}: ${moved.files} files, ${formatBytes(moved.bytes)}, ${moved.settings} settings rows; checksums verified.`);
  });

function configOf(global: GlobalOptions): EngineConfig {
  if (existsSync('.env')) process.loadEnvFile('.env');
  return loadEngineConfig(global.dataDir ? { ...process.env, DATA_DIR: global.dataDir } : process.env);
}

async function withEngine(command: Command, run: (engine: Engine, global: GlobalOptions, config: EngineConfig) => Promise<number>): Promise<void> {
  const global = command.optsWithGlobals<GlobalOptions>();
  const config = configOf(global);
  const engine = createEngine({
    dataDir: config.dataDir,
    logger: createStderrLogger(config.logLevel === 'info' ? 'warn' : config.logLevel),
    threads: config.threads,
    retrainPolicy: config.retrainPolicy,
  });
  try {
    process.exitCode = await run(engine, global, config);
  } finally {
    await engine.close();
  }
}

async function indexFiles(engine: Engine, namespace: string, paths: string[]): Promise<number> {
  const { files, missing } = await collectImageFiles(paths);
  const failures: string[] = missing.map((path) => `${path}: no such file or folder`);
  let indexed = 0;
  let duplicates = 0;
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar(
        { format: '{bar} {value}/{total} | {speed} images/s | ETA {eta_formatted}', stream: process.stderr, hideCursor: true, etaBuffer: 50 },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const started = Date.now();
  bar?.start(files.length, 0, { speed: '0.0' });
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++];
      try {
        const result = await engine.index(await readFile(file), { namespace, source: file });
        if (result.status === 'indexed') indexed += 1;
        else duplicates += 1;
      } catch (error) {
        if (!isAppError(error) && !(error as NodeJS.ErrnoException).code) throw error;
        failures.push(`${displayPath(file)}: ${(error as Error).message}`);
      }
      done += 1;
      bar?.update(done, { speed: (done / Math.max((Date.now() - started) / 1000, 0.001)).toFixed(1) });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  bar?.stop();
  const seconds = (Date.now() - started) / 1000;
  for (const failure of failures) console.error(`failed: ${failure}`);
  console.log(
    `Indexed ${indexed}, duplicates skipped ${duplicates}, failed ${failures.length} (${files.length} files in ${seconds.toFixed(1)} s, ${(files.length / Math.max(seconds, 0.001)).toFixed(1)} images/s).`,
  );
  return failures.length > 0 ? 1 : 0;
}

async function runRetrain(engine: Engine, namespace: string, force = false): Promise<RetrainSummary> {
  const controller = new AbortController();
  const cancel = () => {
    console.error('\nCancelling the retrain; the current model stays active.');
    controller.abort();
  };
  process.once('SIGINT', cancel);
  try {
    return await engine.retrain({
      namespace,
      force,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'checking') {
          console.log('comparing with the current model…');
        } else if (p.phase === 'training' && p.epoch !== undefined) {
          const eta = p.secondsPerEpoch && p.epochs ? ` ETA ${Math.round((p.epochs - p.epoch) * p.secondsPerEpoch)} s` : '';
          console.log(`epoch ${p.epoch}/${p.epochs}  loss ${p.loss?.toFixed(4)}${eta}`);
        } else if (p.phase !== 'training' && p.phase !== 'encoding' && p.phase !== 'style') {
          // Not `style`: the CLI's images have no posters, so its retrain fits none (style-key.ts).
          console.log(`${p.phase}…`);
        }
      },
    });
  } finally {
    process.off('SIGINT', cancel);
  }
}

function printRetrain(summary: RetrainSummary): void {
  if (!summary.swapped) {
    console.log(`Trained ${summary.candidateKey} on ${summary.trainedOn} images in ${summary.seconds.toFixed(1)} s but kept ${summary.previousKey}: ${summary.gate.reason}`);
    console.log('Run `relevant retrain --force` to switch anyway.');
    return;
  }
  console.log(
    `Retrained on ${summary.trainedOn} images in ${summary.seconds.toFixed(1)} s: index key ${summary.previousKey} → ${summary.key}, loss ${summary.loss.toFixed(4)}, ${summary.activeUnits}/${summary.latentDim} active latent units.`,
  );
  console.log(`Quality check: ${summary.gate.reason}${summary.forced ? ' (switched anyway: --force)' : ''}`);
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new InvalidArgumentError('k must be a whole number from 1 to 100.');
  return n;
}

function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') ? path : rel;
}

function round(x: number): number {
  return Math.round(x * 10000) / 10000;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(isAppError(error) ? `error: ${error.message}` : error);
  process.exitCode = isAppError(error) ? 2 : 70;
});
