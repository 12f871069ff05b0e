/**
 * One job in a worker thread, start to result: CPU-heavy steps (a retrain's quality check, its index build) run
 * there so the thread that answers queries stays free, and a crash in native code ends the worker, not the process.
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
  /** Aborting terminates the worker and rejects with this error. */
  signal?: AbortSignal;
  cancelled?: () => AppError;
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
    let settled = false;
    const finish = (error: AppError | undefined, result?: T): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      if (error) reject(error);
      else resolve(result as T);
    };
    const onAbort = (): void => finish(cancelled());
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (message: TaskReply<T> | { type?: undefined }) => {
      if (settled) return;
      try {
        if (message.type === 'done') finish(undefined, message.result);
        else if (message.type === 'error') finish(AppError.fromJSON(message.error));
        else options.onMessage?.(message);
      } catch (error) {
        finish(isAppError(error) ? error : new AppError(code, `${what} failed.`, { cause: error }));
      }
    });
    worker.on('error', (error) => finish(new AppError(code, `${what} crashed: ${error.message}`, { cause: error })));
    worker.on('exit', (exitCode) => finish(new AppError(code, `${what} stopped unexpectedly (exit code ${exitCode}).`, { details: { code: exitCode } })));
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
