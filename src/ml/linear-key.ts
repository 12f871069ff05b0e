/**
 * A PCA index key (plain or whitened with shrinkage) in the VAE's file format, so that saving, loading, the bulk
 * encoding worker and the index build all serve it unchanged. A linear map y = A·x is an exact two-layer ReLU
 * network: hidden = relu([A; −A]·x), y = [I, −I]·hidden, because relu(a) − relu(−a) = a.
 */
import { randomBytes } from 'node:crypto';
import { fitPca } from './pca.js';
import { DEFAULT_VAE_HYPER } from './vae-hyper.js';
import { VAE_FORMAT, VaeModel, type VaeMeta, type VaeWeights } from './vae-model.js';

export type PcaKeyOptions = {
  components: number;
  /**
   * null: plain PCA. A number s: each axis divided by √(variance + s · mean variance), i.e. whitening shrunk
   * towards plain PCA (s = 0 is full whitening, large s approaches plain PCA up to a common scale).
   */
  shrinkage: number | null;
  seed: number;
};

export function pcaKeyId(options: PcaKeyOptions, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `pca${options.components}${options.shrinkage === null ? '' : 'w'}-${stamp}-${randomBytes(4).toString('hex')}`;
}

/** Fits PCA on `n` rows of `features` (row-major, n × dim) and returns it as an encoder whose μ is the projection. */
export function fitPcaKey(features: Float32Array, n: number, dim: number, options: PcaKeyOptions): VaeModel {
  const pca = fitPca(features, n, dim, Math.min(options.components, n - 1), options.seed);
  const l = pca.components;
  const h = 2 * l;
  const meanVariance = pca.variances.reduce((a, b) => a + b, 0) / l;
  const scale = Float64Array.from(pca.variances, (v) => (options.shrinkage === null ? 1 : 1 / Math.sqrt(Math.max(v + options.shrinkage * meanVariance, 1e-12))));
  const encoderW = new Float32Array(dim * h);
  for (let k = 0; k < dim; k++) {
    for (let r = 0; r < l; r++) {
      const a = pca.axes[r * dim + k] * scale[r];
      encoderW[k * h + r] = a;
      encoderW[k * h + l + r] = -a;
    }
  }
  const muW = new Float32Array(h * l);
  for (let r = 0; r < l; r++) {
    muW[r * l + r] = 1;
    muW[(l + r) * l + r] = -1;
  }
  const weights: VaeWeights = {
    // PCA was fitted on unit-length rows centred on their mean: the 'l2' transform, then centring without scaling.
    inputMean: Float32Array.from(pca.mean),
    inputStd: new Float32Array(dim).fill(1),
    encoderW,
    encoderB: new Float32Array(h),
    muW,
    muB: new Float32Array(l),
    // No variance and no decoder: a linear key is not a generative model. logVar = 0 means unit variance.
    logVarW: new Float32Array(h * l),
    logVarB: new Float32Array(l),
    decoderW: new Float32Array(l * h),
    decoderB: new Float32Array(h),
    outputW: new Float32Array(h * dim),
    outputB: new Float32Array(dim),
  };
  const now = new Date();
  const meta: VaeMeta = {
    id: pcaKeyId(options, now),
    created: now.toISOString(),
    trainingSize: n,
    hyper: { ...DEFAULT_VAE_HYPER, latent: l, hidden: h, inputTransform: 'l2', seed: options.seed },
    loss: { final: 0, recon: 0, kl: 0 },
    activeUnits: l,
    inputDim: dim,
    latentDim: l,
    hiddenDim: h,
    seed: options.seed,
    epochsTrained: 0,
    keyKind: options.shrinkage === null ? 'pca' : 'pca-whitened',
    ...(options.shrinkage === null ? {} : { shrinkage: options.shrinkage }),
    format: VAE_FORMAT,
  };
  return new VaeModel(meta, weights);
}

/** 'vae' for a trained VAE (and every model saved before linear keys existed). */
export function keyKindOf(model: VaeModel): 'vae' | 'pca' | 'pca-whitened' {
  return model.meta.keyKind ?? 'vae';
}
