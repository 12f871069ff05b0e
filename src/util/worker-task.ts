/**
 * One job in a worker thread, start to result: CPU-heavy steps (a retrain's training, its quality check, its index
 * build) run there so the thread that answers queries stays free, and a crash in native code ends the worker, not the process.
 */
import { parentPort, Worker, workerData } from 'node:worker_threads';
import { AppError, isAppError, type ErrorCode } from '../errors.js';

type ErrorJson = { code: ErrorCode; message: string; details: Record<string, unknown> };
export type TaskReply<T> = { type: 'done'; result: T } | { type: 'error'; error: ErrorJson };

export interface WorkerTaskOptions {
  /** The code of the error a crash or a throw in the worker becomes. */
  code: ErrorCode;
  /** Names the worker in error messages ("the quality check"). */
  what: string;
  /** Aborting terminates the worker (see `softCancel`) and rejects with `cancelled()`. */
  signal?: AbortSignal;
  cancelled?: () => AppError;
  /**
   * For a worker that can stop at a safe point (training, between batches): aborting calls `stop` instead and
   * terminates the worker only if it has not ended `graceMs` later. A result that arrives after the abort counts
   * as cancelled; an error the worker posts (its own cancellation) is passed on.
   */
  softCancel?: { stop: () => void; graceMs: number };
  transfer?: ArrayBuffer[];
  /** Messages the worker posts besides its result (progress). */
  onMessage?: (message: unknown) => void;
  /** Called with the worker once it is started: a job fed while it runs posts its input this way. */
  onStart?: (worker: Worker) => void;
}

/** Starts the worker script at `url` with `input` as its workerData; resolves with the result it posts. */
export function runWorkerTask<T>(url: URL, input: unknown, options: WorkerTaskOptions): Promise<T> {
  const { code, what, signal } = options;
  const cancelled = options.cancelled ?? (() => new AppError('TRAINING_CANCELLED', 'The retrain was cancelled.'));
  if (signal?.aborted) return Promise.reject(cancelled());
  return new Promise<T>((resolve, reject) => {
    let worker: Worker;
    try {
      worker = new Worker(url, { workerData: input, transferList: options.transfer });
    } catch (error) {
      reject(new AppError(code, `Could not start ${what}.`, { cause: error }));
      return;
    }
    // `what` starts the sentence in these messages.
    const What = what.charAt(0).toUpperCase() + what.slice(1);
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const finish = (error: AppError | undefined, result?: T): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(killTimer);
      void worker.terminate();
      if (error) reject(error);
      else resolve(result as T);
    };
    const onAbort = (): void => {
      if (!options.softCancel) return finish(cancelled());
      options.softCancel.stop();
      killTimer = setTimeout(() => finish(cancelled()), options.softCancel.graceMs);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (message: TaskReply<T> | { type?: undefined }) => {
      if (settled) return;
      try {
        if (message.type === 'done') finish(signal?.aborted ? cancelled() : undefined, message.result);
        else if (message.type === 'error') finish(AppError.fromJSON(message.error));
        else options.onMessage?.(message);
      } catch (error) {
        // A throwing onMessage (progress) must not become an uncaught exception here.
        finish(isAppError(error) ? error : new AppError(code, `${What} failed.`, { cause: error }));
      }
    });
    worker.on('error', (error) => finish(new AppError(code, `${What} crashed: ${error.message}`, { cause: error })));
    worker.on('exit', (exitCode) => finish(new AppError(code, `${What} stopped unexpectedly (exit code ${exitCode}).`, { details: { code: exitCode } })));
    options.onStart?.(worker);
  });
}

/** The worker side: runs `job` on workerData and posts its result (or its failure, as `code`) once. */
export async function serveWorkerTask<I, T>(code: ErrorCode, job: (input: I) => Promise<{ result: T; transfer?: ArrayBuffer[] }>): Promise<void> {
  if (!parentPort) throw new Error('a worker task must be started as a worker thread');
  const port = parentPort;
  try {
    const { result, transfer } = await job(workerData as I);
    port.postMessage({ type: 'done', result } satisfies TaskReply<T>, transfer ?? []);
  } catch (error) {
    const failure = isAppError(error)
      ? error
      : new AppError(code, `${error instanceof Error ? error.message : String(error)}`, { details: { stack: error instanceof Error ? error.stack : undefined } });
    port.postMessage({ type: 'error', error: failure.toJSON() } satisfies TaskReply<T>);
  }
}
