// The process the crash test kills (forked by scenarios.ts). argv: mode ('ingest' | 'retrain') and its
// arguments as JSON. Every message goes over IPC as soon as the engine call it reports has resolved, so the
// parent's list of acknowledged images never holds one the engine had not acknowledged.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createEngine } from '../../src/index/engine.js';
import { sendToParent, type ChildMessage, type ChildArgs } from './protocol.js';

const [mode, json = '{}'] = process.argv.slice(2);
const args = JSON.parse(json) as ChildArgs;
const engine = createEngine({ dataDir: args.dataDir, thumbnails: true, vaeHyper: args.vaeHyper });

const send = (message: ChildMessage) => sendToParent(message);

async function ingest(imagesDir: string, concurrency: number, from: number): Promise<void> {
  const names = (await readdir(imagesDir)).sort().slice(from);
  let next = 0;
  // Several images in flight, as in the bot's ingest queue, so a kill can land between overlapping commits.
  const lane = async () => {
    while (next < names.length) {
      const name = names[next++];
      const result = await engine.index(await readFile(join(imagesDir, name)), { source: name });
      await send({ type: 'ack', name, id: result.record.id, sha256: result.record.sha256, status: result.status });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

async function retrain(): Promise<void> {
  const summary = await engine.retrain({
    force: true,
    onProgress: (p) => void send({ type: 'phase', phase: p.phase }),
  });
  await send({ type: 'retrained', key: summary.key });
}

await send({ type: 'started' });
if (mode === 'ingest') await ingest(String(args.imagesDir), args.concurrency ?? 4, args.from ?? 0);
else if (mode === 'retrain') await retrain();
else throw new Error(`unknown crash-test mode "${mode}"`);
await engine.close();
await send({ type: 'done' });
process.exit(0);
