import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../../src/util/random.js';

export const SUITES = ['model', 'decode', 'ingest', 'query', 'retrain', 'retrain-serving', 'memory'] as const;
export type SuiteName = (typeof SUITES)[number];
/** The namespace the benchmark's stores are written to. */
export const BENCH_NAMESPACE = 'bench';

export interface Target {
  op: '>=' | '<=';
  value: number;
}

/** One line of the table. `estimated` marks figures derived from measurements at a smaller size. */
export interface Row {
  suite: SuiteName;
  metric: string;
  value: number;
  unit: string;
  target?: Target;
  estimated?: boolean;
  note?: string;
}

export interface BenchContext {
  quick: boolean;
  /** Identifies one benchmark run (its start time), so that work shared by suites is measured once per run. */
  runId: string;
  /** Built indexes, generated uploads and stores survive here between runs, so an interrupted run resumes. */
  cacheDir: string;
  log(message: string): void;
}

export interface SuiteResult {
  rows: Row[];
  /** Everything else worth keeping for comparing runs (per-configuration timings, breakdowns). */
  detail: Record<string, unknown>;
}

export function median(values: number[]): number {
  return quantile(values, 0.5);
}

/** Linear interpolation between order statistics, as numpy's default. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export function loadAverage(): [number, number, number] {
  const [one, five, fifteen] = loadavg();
  return [round(one, 2), round(five, 2), round(fifteen, 2)];
}

export function machineInfo() {
  const cpu = cpus();
  const { flags, mhz } = procCpuinfo();
  return {
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    // Virtual machines often report 0 to os.cpus(); /proc/cpuinfo still has the nominal clock.
    mhz: cpu[0]?.speed || mhz,
    simd: flags.has('avx512f') ? 'avx512' : flags.has('avx2') ? 'avx2' : 'sse',
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverage: loadAverage(),
  };
}

function procCpuinfo(): { flags: Set<string>; mhz: number } {
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // Not Linux: no SIMD flags or clock to report.
  }
  const flags = new Set((text.match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/));
  return { flags, mhz: Math.round(Number(text.match(/^cpu MHz\s*:\s*([\d.]+)/m)?.[1] ?? 0)) };
}

/** Deterministic draws (mulberry32), so generated data and query samples are the same on every run. */
export function createRandom(seed: number): { next(): number; gauss(): number; int(n: number): number } {
  const next = mulberry32(seed);
  return {
    next,
    gauss: () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()),
    int: (n) => Math.floor(next() * n),
  };
}

/** Returns the cached JSON at `path`, or computes, stores and returns it. */
export async function cachedJson<T>(path: string, compute: () => Promise<T>): Promise<T> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    const value = await compute();
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, JSON.stringify(value));
    return value;
  }
}

export const CHILD_SCRIPT = fileURLToPath(new URL('./child.js', import.meta.url));

export interface ChildOutput<T> {
  result: T;
  /** Peak resident set of the whole child process (main thread and workers). */
  maxRssBytes: number;
  /** From spawning the child to it printing its result, as the parent saw it. */
  wallMs: number;
}

/**
 * Runs one scenario of child.ts in a fresh Node process, so that its peak RSS is its own and a cold start is
 * really cold. The child prints one JSON line on stdout.
 */
export function runChild<T>(scenario: string, args: Record<string, unknown>): Promise<ChildOutput<T>> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CHILD_SCRIPT, scenario, JSON.stringify(args)],
      { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LOG_LEVEL: 'silent' } },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`bench child "${scenario}" failed: ${stderr.trim() || error.message}`));
          return;
        }
        const last = stdout.trim().split('\n').pop() ?? '';
        const parsed = JSON.parse(last) as { result: T; maxRssBytes: number };
        resolve({ ...parsed, wallMs: performance.now() - started });
      },
    );
  });
}

export function bytesToMiB(bytes: number): number {
  return round(bytes / 2 ** 20, 1);
}

export function cachePath(ctx: BenchContext, ...parts: string[]): string {
  return join(ctx.cacheDir, ...parts);
}
