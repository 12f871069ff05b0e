// Inference throughput of one or more ONNX files with the session options the worker uses.
//
//   npm run build && node dist/scripts/bench-model.js [--model a.onnx --model b.onnx] [--batches 1,8,16,32]
//                                                     [--threads 1,2] [--rounds 3] [--unfolded-dq]
//
// --unfolded-dq also measures every model with ORT's default of not constant-folding DequantizeLinear, which
// PROVENANCE.md compares against. Variants are measured in interleaved rounds and the best round is reported, so
// that load from other processes on a shared machine penalises all variants alike instead of whichever happened to
// run during a spike.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { MODEL_INPUT, defaultModelDir, ortSessionOptions } from '../src/ml/onnx-model.js';
import { msPerImage as timeBatch } from './bench/model.js';

interface Variant {
  path: string;
  foldDq: boolean;
}

interface Result {
  variant: Variant;
  threads: number;
  batch: number;
  msPerImage: number;
}

const list = (text: string) => text.split(',').map(Number);

/** A fixed pseudo-random batch: constant input could take faster paths (e.g. denormal-free zeros). */
function pseudoRandomInput(batch: number): Float32Array {
  const data = new Float32Array(batch * MODEL_INPUT.size * MODEL_INPUT.size * 3);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761) % 1000) / 500 - 1;
  return data;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', multiple: true, default: [join(defaultModelDir(), 'model.onnx')] },
      batches: { type: 'string', default: '1,8,16,32' },
      threads: { type: 'string', default: '1,2' },
      rounds: { type: 'string', default: '3' },
      'min-ms': { type: 'string', default: '1500' },
      'unfolded-dq': { type: 'boolean', default: false },
    },
  });
  const variants: Variant[] = values.model.flatMap((path) =>
    values['unfolded-dq'] ? [{ path, foldDq: true }, { path, foldDq: false }] : [{ path, foldDq: true }],
  );
  const best = new Map<string, Result>();
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const threads of list(values.threads)) {
      for (const variant of variants) {
        // An empty `extra` drops the session config entry that lets ORT fold the weight DequantizeLinear nodes.
        const options = { ...ortSessionOptions(threads), ...(variant.foldDq ? {} : { extra: {} }) };
        const session = await ort.InferenceSession.create(variant.path, options);
        for (const batch of list(values.batches)) {
          const msPerImage = await timeBatch(session, pseudoRandomInput(batch), batch, Number(values['min-ms']));
          const key = `${variant.path} ${variant.foldDq} ${threads} ${batch}`;
          if (msPerImage < (best.get(key)?.msPerImage ?? Infinity)) best.set(key, { variant, threads, batch, msPerImage });
        }
        await session.release();
      }
    }
  }
  console.log(['model', 'bytes', 'DQ folded', 'threads', 'batch', 'ms/image', 'images/s'].join('\t'));
  for (const { variant, threads, batch, msPerImage } of best.values()) {
    const row = [variant.path, statSync(variant.path).size, variant.foldDq, threads, batch, msPerImage.toFixed(2)];
    console.log([...row, (1000 / msPerImage).toFixed(1)].join('\t'));
  }
}

await main();
