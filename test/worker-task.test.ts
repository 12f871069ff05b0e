// runWorkerTask's ways to end a job: the codes and messages the retrain's workers (training, quality check, index
// build) report through it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AppError, isAppError } from '../src/errors.js';
import { runWorkerTask } from '../src/util/worker-task.js';

const WORKER = new URL('./helpers/task-worker.js', import.meta.url);
const base = { code: 'TRAINING_FAILED', what: 'the test worker' } as const;

function failsWith(code: string, message: RegExp) {
  return (error: unknown) => {
    assert.ok(isAppError(error), String(error));
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  };
}

test('a result after progress messages resolves, and each message reaches onMessage', async () => {
  const seen: unknown[] = [];
  assert.equal(await runWorkerTask<number>(WORKER, { mode: 'progress' }, { ...base, onMessage: (m) => seen.push(m) }), 42);
  assert.deepEqual(seen, [{ type: 'progress' }]);
});

test('a throwing onMessage fails the job with its code instead of escaping', async () => {
  const onMessage = () => {
    throw new Error('progress handler broke');
  };
  await assert.rejects(runWorkerTask(WORKER, { mode: 'progress' }, { ...base, onMessage }), failsWith('TRAINING_FAILED', /^The test worker failed\.$/));
});

test('a worker that exits fails the job with its code and the exit code', async () => {
  await assert.rejects(runWorkerTask(WORKER, { mode: 'exit' }, base), (error: unknown) => {
    failsWith('TRAINING_FAILED', /^The test worker stopped unexpectedly \(exit code 3\)\.$/)(error);
    assert.equal((error as AppError).details.code, 3);
    return true;
  });
});

const cancelled = () => new AppError('TRAINING_CANCELLED', 'Stopped.');

/** Aborts once the worker has started, with a soft cancel that sets the worker's stop flag. */
function softCancelled(mode: 'ignore-stop' | 'done-on-stop') {
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const controller = new AbortController();
  const job = runWorkerTask(WORKER, { mode, stop }, {
    ...base,
    signal: controller.signal,
    cancelled,
    softCancel: { stop: () => Atomics.store(stop, 0, 1), graceMs: 50 },
    onMessage: () => controller.abort(),
  });
  return { job, stop };
}

test('a soft cancel asks the worker to stop, and terminates it when it does not', async () => {
  const { job, stop } = softCancelled('ignore-stop');
  await assert.rejects(job, failsWith('TRAINING_CANCELLED', /^Stopped\.$/));
  assert.equal(Atomics.load(stop, 0), 1);
});

test('a result that arrives after a soft cancel counts as cancelled', async () => {
  const { job } = softCancelled('done-on-stop');
  await assert.rejects(job, failsWith('TRAINING_CANCELLED', /^Stopped\.$/));
});

test('a signal aborted before the start rejects without starting a worker', async () => {
  await assert.rejects(runWorkerTask(WORKER, { mode: 'exit' }, { ...base, signal: AbortSignal.abort(), cancelled }), failsWith('TRAINING_CANCELLED', /^Stopped\.$/));
});
