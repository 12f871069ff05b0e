// One benchmark scenario in its own process (started by runChild in common.ts): argv is the scenario's name and
// its arguments as JSON; the last stdout line is { result, maxRssBytes }. Modules are imported per scenario so a
// cold start loads only what the serving process would.
import { readFileSync } from 'node:fs';
import type { BenchContext } from './common.js';

const [scenario, json = '{}'] = process.argv.slice(2);
const args = JSON.parse(json) as Record<string, unknown>;
const ctx: BenchContext = { quick: args.quick === true, runId: '', cacheDir: String(args.cacheDir ?? ''), log: () => undefined };

async function run(): Promise<unknown> {
  switch (scenario) {
    case 'serve': {
      const { runServe } = await import('./serve.js');
      return runServe({ ...ctx, dataDir: String(args.dataDir), queries: Number(args.queries), importedAt: performance.now() });
    }
    case 'ingest':
      return (await import('./ingest.js')).runIngest(ctx);
    case 'retrain':
      return (await import('./retrain.js')).runRetrain({ source: String(args.source), workDir: String(args.workDir), epochs: Number(args.epochs) });
    case 'retrain-serving':
      return (await import('./retrain-serving.js')).runRetrainServing({ ...ctx, source: String(args.source), workDir: String(args.workDir), epochs: Number(args.epochs) });
    case 'index-load':
      return (await import('./memory.js')).runIndexLoad({ dir: String(args.dir) });
    default:
      throw new Error(`unknown bench scenario "${scenario}"`);
  }
}

/**
 * Linux keeps getrusage's maxrss across exec, so a child reports at least the RSS of the parent it was forked from;
 * VmHWM belongs to the child's own address space (worker threads included).
 */
function peakRssBytes(): number {
  try {
    const kib = /^VmHWM:\s*(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kib) return Number(kib) * 1024;
  } catch {
    // Not Linux.
  }
  return process.resourceUsage().maxRSS * 1024;
}

const result = await run();
const line = JSON.stringify({ result, maxRssBytes: peakRssBytes() });
// Exits once the line is flushed: a worker or timer left behind must not hang the parent.
process.stdout.write(`${line}\n`, () => process.exit(0));
