/** The tfjs backend for training and bulk encoding, chosen once per thread. */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

let backendReady: Promise<string> | undefined;

/**
 * Picks the fastest backend once per thread: tfjs-node when it happens to be installed (it cannot be
 * installed everywhere, so it is not a dependency), otherwise wasm loaded from node_modules, never fetched.
 */
export function initTrainingBackend(): Promise<string> {
  backendReady ??= (async () => {
    const nodeBackend = '@tensorflow/tfjs-node';
    try {
      await import(nodeBackend);
      // A copy of tfjs-node built against another tfjs-core registers there, not here: then wasm.
      if (await tf.setBackend('tensorflow')) return 'tensorflow';
    } catch {
      // Not installed.
    }
    const require = createRequire(import.meta.url);
    setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + path.sep);
    if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend failed to initialise');
    await tf.ready();
    return 'wasm';
  })();
  return backendReady;
}
