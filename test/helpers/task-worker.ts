// A worker for test/worker-task.test.ts: each mode plays one way a worker job can end.
import { parentPort, workerData } from 'node:worker_threads';

const { mode, stop } = workerData as { mode: 'progress' | 'exit' | 'ignore-stop' | 'done-on-stop'; stop?: Int32Array };
const port = parentPort!;
if (mode === 'progress') {
  port.postMessage({ type: 'progress' });
  port.postMessage({ type: 'done', result: 42 });
} else if (mode === 'exit') {
  process.exit(3);
} else {
  port.postMessage({ type: 'started' });
  // Polls the stop flag as training does between batches; 'ignore-stop' never reaches a batch boundary.
  const timer = setInterval(() => {
    if (mode === 'done-on-stop' && Atomics.load(stop!, 0) !== 0) {
      clearInterval(timer);
      port.postMessage({ type: 'done', result: 'finished anyway' });
    }
  }, 5);
}
