// Converts Google's post-training-quantized MobileNetV2 .tflite into the ONNX model the project ships, and
// writes model.json, the labels and the licence beside it. Deterministic: the same source gives the same bytes.
//
//   npm run build && npm run convert-model -- [--source ../shared/models/mobilenet_v2] [--out models/mobilenet_v2]
//                                             [--weights int8|float16|float32]
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  MODEL_CONFIG_FILE,
  MODEL_INPUT,
  MODEL_PREPROCESSING,
  findPackageRoot,
  type ModelConfig,
} from '../src/ml/onnx-model.js';
import { readTflite } from './tflite-reader.js';
import { tfliteToOnnx, type WeightStorage } from './tflite-to-onnx.js';

const SOURCE = {
  file: 'source/tf2_mobilenet_v2_1.0_224_ptq.tflite',
  sha256: '5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c',
  repository: 'https://github.com/google-coral/test_data',
  commit: '104342d2d3480b3e66203073dac24f4e2dbb4c41',
  license: 'Apache-2.0',
};
const LABELS = 'imagenet_labels_1001.txt';
const LICENSE = 'source/LICENSE.google-coral-test_data.txt';
const WEIGHT_TAGS: Record<WeightStorage, string> = { int8: 'int8dq', float16: 'fp16', float32: 'fp32' };

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function main(): void {
  const root = findPackageRoot();
  const { values } = parseArgs({
    options: {
      source: { type: 'string', default: resolve(root, '..', 'shared', 'models', 'mobilenet_v2') },
      out: { type: 'string', default: join(root, 'models', 'mobilenet_v2') },
      weights: { type: 'string', default: 'int8' },
    },
  });
  const weights = values.weights as WeightStorage;
  if (!(weights in WEIGHT_TAGS)) throw new Error(`--weights must be one of ${Object.keys(WEIGHT_TAGS).join(', ')}`);
  const sourceDir = resolve(values.source);
  const outDir = resolve(values.out);

  const tflite = readFileSync(join(sourceDir, SOURCE.file));
  if (sha256(tflite) !== SOURCE.sha256) {
    const expected = `${SOURCE.sha256} (google-coral/test_data@${SOURCE.commit})`;
    throw new Error(`${SOURCE.file} has sha256 ${sha256(tflite)}, expected ${expected}`);
  }

  const result = tfliteToOnnx(readTflite(tflite), {
    weights,
    metadata: {
      source: `${SOURCE.repository}/blob/${SOURCE.commit}/${SOURCE.file.replace('source/', '')}`,
      source_sha256: SOURCE.sha256,
      license: SOURCE.license,
      input: `${MODEL_INPUT.layout} [N,${MODEL_INPUT.size},${MODEL_INPUT.size},3] RGB ${MODEL_INPUT.scaling}`,
    },
  });
  if (result.inputSize !== MODEL_INPUT.size) {
    throw new Error(`model input is ${result.inputSize}, expected ${MODEL_INPUT.size}`);
  }

  const digest = sha256(result.bytes);
  const config: ModelConfig = {
    modelVersion: `mobilenet_v2_1.0_224-ptq-${WEIGHT_TAGS[weights]}-${digest.slice(0, 12)}`,
    file: 'model.onnx',
    sha256: digest,
    bytes: result.bytes.length,
    weights,
    input: MODEL_INPUT,
    preprocessing: MODEL_PREPROCESSING,
    outputs: {
      features: { name: 'features', dim: result.featureDim },
      logits: { name: 'logits', dim: result.numClasses, labels: LABELS, backgroundIndex: 0 },
    },
    source: SOURCE,
  };

  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, config.file), result.bytes);
  writeFileSync(join(outDir, MODEL_CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
  // Copied by content: the shared source is read-only and copyFile would carry that mode into the repository.
  writeFileSync(join(outDir, LABELS), readFileSync(join(sourceDir, LABELS)));
  writeFileSync(join(outDir, 'LICENSE'), readFileSync(join(sourceDir, LICENSE)));
  console.log(`${relative(process.cwd(), join(outDir, config.file))}: ${result.bytes.length} bytes, sha256 ${digest}`);
  console.log(`modelVersion ${config.modelVersion}`);
}

main();
