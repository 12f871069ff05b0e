/**
 * Encodes many feature rows with a VAE, the two dense layers as tfjs matMuls: wasm runs them at ~30 GFLOP/s against
 * ~2.4 for VaeModel.encode's JS loops. It computes what VaeModel.encode computes; a retrain's index build
 * (build-index.worker.ts) encodes every stored image with it, off the thread that answers queries. A query's single
 * vector still goes through VaeModel.encode, which needs no tfjs.
 */
import * as tf from '@tensorflow/tfjs';
import { AppError } from '../errors.js';
import { VaeModel, type VaeMeta, type VaeWeights } from './vae-model.js';
import { initTrainingBackend } from './tf-backend.js';

export interface BulkEncoder {
  readonly model: VaeModel;
  /** μ of `count` row-major feature rows (count × latentDim). */
  encode(features: Float32Array, count: number): Float32Array;
}

export async function loadBulkEncoder(meta: VaeMeta, weights: VaeWeights): Promise<BulkEncoder> {
  await initTrainingBackend();
  const model = new VaeModel(meta, weights);
  const { inputDim: d, hiddenDim: h, latentDim: l } = model.meta;
  const w = model.weights;
  const encoderW = tf.tensor2d(w.encoderW, [d, h]);
  const encoderB = tf.tensor1d(w.encoderB);
  const muW = tf.tensor2d(w.muW, [h, l]);
  const muB = tf.tensor1d(w.muB);
  return {
    model,
    encode(features, count) {
      if (!Number.isInteger(count) || count <= 0 || features.length < count * d) {
        throw new AppError('INFERENCE_FAILED', 'Encoding failed: the feature rows have the wrong size.', { details: { count, length: features.length } });
      }
      const x = new Float32Array(count * d);
      model.standardize(features, 0, count, x);
      const mu = tf.tidy(() => {
        const hidden = tf.fused.matMul({ a: tf.tensor2d(x, [count, d]), b: encoderW, bias: encoderB, activation: 'relu' });
        return tf.fused.matMul({ a: hidden, b: muW, bias: muB });
      });
      try {
        return (mu.dataSync() as Float32Array).slice();
      } finally {
        mu.dispose();
      }
    },
  };
}
