// The contract between the converted model on disk (models/mobilenet_v2/model.json + model.onnx), the converter
// that writes it and the code that feeds it. Kept free of native dependencies so the converter and the worker can
// both import it cheaply.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors.js';

export const MODEL_CONFIG_FILE = 'model.json';

/** The preprocessing the network was trained and referenced with; image.ts implements exactly this. */
export const MODEL_INPUT = {
  name: 'input',
  layout: 'NHWC',
  size: 224,
  channels: 3,
  colorSpace: 'sRGB',
  dtype: 'float32',
  scaling: 'x/127.5-1',
} as const;

/**
 * What the engine does to an image before the network (image.ts implements it; the engine reads `fit` from
 * model.json). `reference` is what the network's reference embeddings (test/fixtures/reference) were computed
 * with: the centre square on the model's grey.
 */
export const MODEL_PREPROCESSING = {
  orientation: 'exif',
  /**
   * The whole image letterboxed, not its centre square: on openclipart it raised P@20 for every key (raw 0.415 →
   * 0.431, VAE 0.426 → 0.444; docs/relevance.md), and art is often not square.
   */
  fit: 'pad',
  resizeKernel: 'linear',
  /** What transparency and the letterbox band are flattened onto, by name (a namespace records its own). */
  backgrounds: { white: [255, 255, 255], grey: [128, 128, 128] },
  /** White measured better; a namespace that held images before the choice existed keeps grey (namespace.ts). */
  newNamespaceBackground: 'white',
  reference: { fit: 'crop', background: 'grey' },
} as const;

export interface ModelConfig {
  modelVersion: string;
  file: string;
  sha256: string;
  bytes: number;
  weights: string;
  input: typeof MODEL_INPUT;
  preprocessing: typeof MODEL_PREPROCESSING;
  outputs: {
    features: { name: string; dim: number };
    logits: { name: string; dim: number; labels: string; backgroundIndex: number };
  };
  source: { file: string; sha256: string; repository: string; commit: string; license: string };
}

/**
 * onnxruntime session options shared by the worker and the benchmark. ORT leaves DequantizeLinear out of constant
 * folding by default (it keeps Q/DQ pairs for its int8 kernels); this graph has only weight DQs and float
 * activations, so folding them at load turns the int8-stored model into a plain float32 one: 2.3x faster.
 */
export function ortSessionOptions(threads: number) {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    extra: { session: { disable_quant_qdq: '1' } },
  } as const;
}

/** The nearest ancestor of `start` holding package.json: works from src/ (tsx) and from dist/src/ (compiled). */
export function findPackageRoot(start: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${start}`);
  }
}

export function defaultModelDir(): string {
  return join(findPackageRoot(), 'models', 'mobilenet_v2');
}

export function readModelConfig(modelDir: string): ModelConfig {
  const path = join(modelDir, MODEL_CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new AppError('MODEL_MISSING', `The image model is missing (${path}).`, { cause, details: { path } });
  }
  let config: ModelConfig;
  try {
    config = JSON.parse(text) as ModelConfig;
  } catch (cause) {
    throw new AppError('MODEL_INVALID', `The image model description is not valid JSON (${path}).`, { cause });
  }
  const mismatch = (['name', 'layout', 'size', 'channels', 'scaling'] as const).find(
    (key) => config.input?.[key] !== MODEL_INPUT[key],
  );
  const fit: string | undefined = config.preprocessing?.fit;
  if (
    mismatch !== undefined ||
    (fit !== 'crop' && fit !== 'pad') ||
    typeof config.modelVersion !== 'string' ||
    typeof config.file !== 'string' ||
    !/^[0-9a-f]{64}$/.test(config.sha256 ?? '') ||
    typeof config.outputs?.features?.name !== 'string' ||
    typeof config.outputs?.logits?.name !== 'string' ||
    !Number.isInteger(config.outputs.features.dim) ||
    !Number.isInteger(config.outputs.logits.dim)
  ) {
    const message = `The image model description does not match this version of the program (${path}).`;
    throw new AppError('MODEL_INVALID', message, {
      details: { path, field: mismatch ?? 'version/file/sha256/preprocessing/outputs' },
    });
  }
  return config;
}
