/** matMul variants with cheaper gradients than tfjs's own on the wasm backend (the VAE's training step). */
import * as tf from '@tensorflow/tfjs';

/**
 * matMul whose backward pass transposes explicitly and then multiplies plainly: wasm matMul with a
 * transpose flag runs at 1-2 GFLOP/s against ~20 without, which made default gradients ~6× slower.
 */
export const matMul = tf.customGrad((...args) => {
  const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor2D, [sa, sb]: tf.Tensor[]) => [
      tf.matMul(dy, tf.transpose(sb as tf.Tensor2D)),
      tf.matMul(tf.transpose(sa as tf.Tensor2D), dy),
    ],
  };
}) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** x·W for a data input: no gradient for x, which for the 1280-wide first layer would cost a third of its backward pass. */
export function dataMatMul(x: tf.Tensor2D, w: tf.Variable): tf.Tensor2D {
  const op = tf.customGrad((...args) => {
    const [wIn] = args as [tf.Tensor2D];
    return {
      value: tf.matMul(x, wIn),
      gradFunc: (dy: tf.Tensor2D) => [tf.matMul(tf.transpose(x), dy)],
    };
  }) as (wIn: tf.Tensor) => tf.Tensor2D;
  return op(w);
}
