import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Opens the store at `path` in a child process with `options` (the source of an object literal whose hook `hook`
 * the store calls before each batch's commit), and SIGKILLs it when batch `killAt` is about to commit. The child
 * holds each transaction open a moment, so the kill lands inside one: what must be rolled back is rolled back.
 */
export async function killDuringOpen(path: string, options: { batchOption: string; batch: number; hook: string }, killAt = 7): Promise<void> {
  const storeModule = fileURLToPath(new URL('../../src/index/store.js', import.meta.url));
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    const { FeatureStore } = await import(${JSON.stringify(storeModule)});
    await FeatureStore.open(${JSON.stringify(path)}, { ${options.batchOption}: ${options.batch}, ${options.hook}: (c) => {
      process.stdout.write('batch ' + c + '\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2000);
    } });
    process.stdout.write('done\\n');
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    if (output.includes(`batch ${killAt}\n`)) child.kill('SIGKILL');
  });
  assert.equal(await exited, 'SIGKILL');
  assert.ok(!output.includes('done'), 'killed before the open finished');
}
