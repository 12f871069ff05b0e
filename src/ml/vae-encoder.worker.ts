/**
 * Worker-thread entry for bulk encoding: a retrain encodes every stored image with the new VAE. Started by
 * vae-encoder-client.ts, never imported elsewhere. It computes what VaeModel.encode computes, with the two dense
 * layers as tfjs matMuls: wasm runs them at ~30 GFLOP/s against ~2.4 for the JS loops, and not on the thread that
 * answers queries. Every reply, a failure included, is a message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { AppError, isAppError, type ErrorCode } from '../errors.js';
import { VaeModel, type VaeMeta, type VaeWeights } from './vae-model.js';
import { initTrainingBackend } from './tf-backend.js';

export type VaeEncoderInput = { meta: VaeMeta; weights: VaeWeights };

/** `count` row-major feature vectors to encode; the reply carries the same id. */
export type VaeEncoderRequest = { id: number; features: Float32Array; count: number };

export type VaeEncoderReply =
  | { id: number; mu: Float32Array }
  | { id: number; error: { code: ErrorCode; message: string; details: Record<string, unknown> } };

type Layers = { encoderW: tf.Tensor2D; encoderB: tf.Tensor1D; muW: tf.Tensor2D; muB: tf.Tensor1D };

async function load(input: VaeEncoderInput): Promise<{ model: VaeModel; layers: Layers }> {
  await initTrainingBackend();
  const model = new VaeModel(input.meta, input.weights);
  const { inputDim: d, hiddenDim: h, latentDim: l } = model.meta;
  const w = model.weights;
  const layers: Layers = {
    encoderW: tf.tensor2d(w.encoderW, [d, h]),
    encoderB: tf.tensor1d(w.encoderB),
    muW: tf.tensor2d(w.muW, [h, l]),
    muB: tf.tensor1d(w.muB),
  };
  return { model, layers };
}

function encode({ model, layers }: { model: VaeModel; layers: Layers }, request: VaeEncoderRequest): Float32Array {
  const d = model.meta.inputDim;
  const { count } = request;
  if (!Number.isInteger(count) || count <= 0 || request.features.length < count * d) {
    throw new AppError('INFERENCE_FAILED', 'Encoding failed: the feature rows have the wrong size.', { details: { count, length: request.features.length } });
  }
  const x = new Float32Array(count * d);
  model.standardize(request.features, 0, count, x);
  const mu = tf.tidy(() => {
    const hidden = tf.fused.matMul({ a: tf.tensor2d(x, [count, d]), b: layers.encoderW, bias: layers.encoderB, activation: 'relu' });
    return tf.fused.matMul({ a: hidden, b: layers.muW, bias: layers.muB });
  });
  try {
    const values = mu.dataSync() as Float32Array;
    // Transferred to the parent, so it must own its whole buffer.
    return values.byteOffset === 0 && values.byteLength === values.buffer.byteLength ? values : values.slice();
  } finally {
    mu.dispose();
  }
}

function toAppError(error: unknown): AppError {
  if (isAppError(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new AppError('INFERENCE_FAILED', `Encoding failed: ${reason}`, { details: { reason } });
}

if (!parentPort) throw new Error('vae-encoder.worker.js must be started as a worker thread');
const port = parentPort;
// Requests that arrive while tfjs loads wait on this promise, in order.
const ready = load(workerData as VaeEncoderInput);
port.on('message', (request: VaeEncoderRequest) => {
  ready.then(
    (state) => {
      const mu = encode(state, request);
      port.postMessage({ id: request.id, mu } satisfies VaeEncoderReply, [mu.buffer as ArrayBuffer]);
    },
  ).catch((error: unknown) => port.postMessage({ id: request.id, error: toAppError(error).toJSON() } satisfies VaeEncoderReply));
});
