/**
 * The VAE's network and losses in tfjs: parameters, encoder, decoder, the ELBO's terms and the neighbour term. One
 * hidden ReLU layer each way; μ and log σ² are linear in the encoder's hidden layer.
 */
import * as tf from '@tensorflow/tfjs';
import type { Sfc32 } from '../util/random.js';
import { dataMatMul, matMul } from './tf-matmul.js';

export type Params = {
  encoderW: tf.Variable;
  encoderB: tf.Variable;
  muW: tf.Variable;
  muB: tf.Variable;
  logVarW: tf.Variable;
  logVarB: tf.Variable;
  decoderW: tf.Variable;
  decoderB: tf.Variable;
  outputW: tf.Variable;
  outputB: tf.Variable;
};

/** Named as in VaeWeights. He-uniform before a ReLU, Glorot-uniform before a linear output; biases start at zero. */
export function initParams(rng: Sfc32, d: number, h: number, l: number): Params {
  const matrix = (rows: number, cols: number, relu: boolean): tf.Variable => {
    const limit = relu ? Math.sqrt(6 / rows) : Math.sqrt(6 / (rows + cols));
    const values = new Float32Array(rows * cols);
    for (let i = 0; i < values.length; i++) values[i] = (2 * rng.uniform() - 1) * limit;
    // tidy: a variable shares its initial tensor's data but does not own that tensor.
    return tf.tidy(() => tf.variable(tf.tensor2d(values, [rows, cols])));
  };
  const bias = (size: number): tf.Variable => tf.tidy(() => tf.variable(tf.zeros([size])));
  return {
    encoderW: matrix(d, h, true),
    encoderB: bias(h),
    muW: matrix(h, l, false),
    muB: bias(l),
    logVarW: matrix(h, l, false),
    logVarB: bias(l),
    decoderW: matrix(l, h, true),
    decoderB: bias(h),
    outputW: matrix(h, d, false),
    outputB: bias(d),
  };
}

export function encoder(p: Params, x: tf.Tensor2D): { mu: tf.Tensor2D; logVar: tf.Tensor2D } {
  const hidden = tf.relu(tf.add(dataMatMul(x, p.encoderW), p.encoderB)) as tf.Tensor2D;
  return {
    mu: tf.add(matMul(hidden, p.muW as tf.Tensor2D), p.muB),
    logVar: tf.add(matMul(hidden, p.logVarW as tf.Tensor2D), p.logVarB),
  };
}

export function decoder(p: Params, z: tf.Tensor2D): tf.Tensor2D {
  const hidden = tf.relu(tf.add(matMul(z, p.decoderW as tf.Tensor2D), p.decoderB)) as tf.Tensor2D;
  return tf.add(matMul(hidden, p.outputW as tf.Tensor2D), p.outputB);
}

/** Gaussian log-likelihood with unit variance on standardized inputs, up to a constant: ½‖x − x̂‖² per vector. */
export function reconPerVector(x: tf.Tensor2D, xHat: tf.Tensor2D): tf.Scalar {
  return tf.mul(0.5, tf.div(tf.sum(tf.squaredDifference(x, xHat)), x.shape[0]));
}

/** KL(q(z|x) ‖ N(0, I)) per latent dimension, averaged over the batch. */
export function klPerDim(mu: tf.Tensor2D, logVar: tf.Tensor2D): tf.Tensor1D {
  return tf.mul(0.5, tf.mean(tf.sub(tf.add(tf.square(mu), tf.exp(logVar)), tf.add(1, logVar)), 0));
}

/** Keeps each row's similarity to itself out of both softmaxes: it would dominate them and says nothing about neighbours. */
function withoutSelf(logits: tf.Tensor2D): tf.Tensor2D {
  return tf.sub(logits, tf.mul(tf.eye(logits.shape[0]), 1e9));
}

function rowsToUnitLength(a: tf.Tensor2D): tf.Tensor2D {
  return tf.div(a, tf.sqrt(tf.add(tf.sum(tf.square(a), 1, true), 1e-12)));
}

/**
 * Log-probabilities, row by row, of picking each other row of `inputs` as a neighbour: a softmax over cosine
 * similarities at `temperature`. The target of neighbourLoss; computed without gradients.
 */
export function neighbourTarget(inputs: tf.Tensor2D, temperature: number): tf.Tensor2D {
  const unit = rowsToUnitLength(inputs);
  return tf.logSoftmax(withoutSelf(tf.div(tf.matMul(unit, tf.transpose(unit)), temperature)));
}

/**
 * KL(target ‖ the same distribution over μ cosine similarities), averaged over rows, in nats: 0 exactly when
 * μ ranks and spaces each row's neighbours as the inputs do. The ELBO alone rewards reconstructing every
 * feature, while retrieval needs only the neighbourhoods; this term asks for them directly.
 */
export function neighbourLoss(targetLogP: tf.Tensor2D, mu: tf.Tensor2D, temperature: number): tf.Scalar {
  const unit = rowsToUnitLength(mu);
  const logQ = tf.logSoftmax(withoutSelf(tf.div(matMul(unit, tf.transpose(unit)), temperature)));
  return tf.div(tf.sum(tf.mul(tf.exp(targetLogP), tf.sub(targetLogP, logQ))), mu.shape[0]);
}
