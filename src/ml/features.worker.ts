// Runs the ONNX session off the main thread: one session.run blocks its thread for the whole batch (hundreds of ms),
// which the bot's event loop cannot afford. Protocol: see WorkerInit / WorkerRequest / WorkerReply in features.ts.
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { AppError } from '../errors.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './features.js';
import { ortSessionOptions } from './onnx-model.js';

const init = workerData as WorkerInit;
const port = parentPort!;

function post(reply: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(reply, transfer);
}

/** Copies out of ORT-owned memory into a plain buffer that can be transferred. */
function copyOut(tensor: ort.Tensor | undefined, rows: number, dim: number, what: string): Float32Array<ArrayBuffer> {
  if (!tensor || tensor.type !== 'float32' || tensor.dims.length !== 2 || tensor.dims[0] !== rows || tensor.dims[1] !== dim) {
    throw new Error(`${what} output has shape [${tensor?.dims}] of type ${tensor?.type}, expected [${rows},${dim}] float32`);
  }
  return new Float32Array(tensor.data as Float32Array);
}

async function run(session: ort.InferenceSession, input: Float32Array, rows: number, withLogits: boolean) {
  const { size } = init;
  const feeds = { [init.inputName]: new ort.Tensor('float32', input, [rows, size, size, 3]) };
  const names = withLogits ? [init.featuresName, init.logitsName] : [init.featuresName];
  const out = await session.run(feeds, names);
  return {
    features: copyOut(out[init.featuresName], rows, init.featureDim, 'features'),
    logits: withLogits ? copyOut(out[init.logitsName], rows, init.logitsDim, 'logits') : null,
  };
}

const reason = (cause: unknown) => ({ reason: cause instanceof Error ? cause.message : String(cause) });

/** Closing the port leaves the thread with nothing to do, so it exits normally. */
async function shutDown(session: ort.InferenceSession | undefined): Promise<void> {
  await session?.release().catch(() => undefined);
  port.close();
}

async function handle(session: ort.InferenceSession, request: WorkerRequest): Promise<void> {
  if (request.type === 'close') return shutDown(session);
  try {
    const input = new Float32Array(request.input, 0, request.rows * init.size * init.size * 3);
    const { features, logits } = await run(session, input, request.rows, request.withLogits);
    const transfer = [request.input, features.buffer, ...(logits ? [logits.buffer] : [])];
    post(
      { type: 'result', id: request.id, input: request.input, features: features.buffer, logits: logits?.buffer ?? null },
      transfer,
    );
  } catch (cause) {
    const error = new AppError('INFERENCE_FAILED', 'The image could not be analysed (model error).', {
      details: reason(cause),
    });
    post({ type: 'error', id: request.id, input: request.input, error: error.toJSON() }, [request.input]);
  }
}

async function main(): Promise<void> {
  let session: ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(init.model, ortSessionOptions(init.threads));
    // A first run checks the declared shapes and pays ORT's one-off allocation cost before real requests arrive.
    await run(session, new Float32Array(init.size * init.size * 3), 1, true);
  } catch (cause) {
    const message = 'The image model could not be loaded; it may be damaged or from another version.';
    const error = new AppError('MODEL_INVALID', message, { details: reason(cause) });
    post({ type: 'failed', error: error.toJSON() });
    await shutDown(session);
    return;
  }

  const ready = session;
  // One request at a time, in arrival order: a 'close' must wait for the run before it.
  let previous = Promise.resolve();
  port.on('message', (request: WorkerRequest) => {
    previous = previous.then(() => handle(ready, request));
  });
  post({ type: 'ready' });
}

await main();
