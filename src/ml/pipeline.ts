// What the engine does to an image, in one place: decode and preprocess it as models/mobilenet_v2/model.json says,
// extract its features, and make its thumbnail from the same pixels. The engine imports this, not the steps.
import { createFeatureExtractor, type FeatureExtractor } from './features.js';
import { MAX_INPUT_BYTES, MAX_INPUT_PIXELS, preprocessImage, type Background } from './image.js';
import { defaultModelDir, readModelConfig, type ModelConfig } from './onnx-model.js';
import { thumbnailFromPixels } from './thumbnail.js';

export type { Background };

export interface ImagePipelineOptions {
  /** onnxruntime threads for feature extraction. */
  threads?: number;
  maxInputBytes?: number;
  maxInputPixels?: number;
  /** Make a thumbnail when asked for one (default true). */
  thumbnails?: boolean;
  /** Start the model at once instead of at the first image (see EngineOptions.preloadModel). */
  preloadModel?: boolean;
}

export interface ProcessedImage {
  features: Float32Array;
  /** The decoded image's size, after EXIF orientation. */
  width: number;
  height: number;
  thumbnail?: Buffer;
}

export interface ImagePipeline {
  /** The feature size model.json declares (the extractor checks the model agrees). */
  featureDim(): number;
  modelVersion(): string;
  process(bytes: Uint8Array, background: Background, withThumbnail?: boolean): Promise<ProcessedImage>;
  close(): Promise<void>;
}

/** How the engine fits an image into the model's square, as model.json says (the evaluations use it too). */
export function preprocessFit(modelDir = defaultModelDir()): 'crop' | 'pad' {
  return readModelConfig(modelDir).preprocessing.fit;
}

export function createImagePipeline(options: ImagePipelineOptions = {}): ImagePipeline {
  // Read at first use, not at construction: a missing model is reported by what needs it, as before.
  let config: ModelConfig | undefined;
  const modelConfig = () => (config ??= readModelConfig(defaultModelDir()));
  let extractor: Promise<FeatureExtractor> | undefined;
  const startExtractor = () => (extractor ??= createFeatureExtractor({ threads: options.threads }));
  // A failure here is reported by the first image that needs the model, like a lazily started one.
  if (options.preloadModel) startExtractor().catch(() => undefined);

  return {
    featureDim: () => modelConfig().outputs.features.dim,
    modelVersion: () => modelConfig().modelVersion,

    async process(bytes, background, withThumbnail = false) {
      const image = await preprocessImage(bytes, {
        maxBytes: options.maxInputBytes ?? MAX_INPUT_BYTES,
        maxPixels: options.maxInputPixels ?? MAX_INPUT_PIXELS,
        fit: modelConfig().preprocessing.fit,
        background,
      });
      const model = await startExtractor();
      const [vector, thumbnail] = await Promise.all([
        model.extract(image.input),
        withThumbnail && options.thumbnails !== false ? thumbnailFromPixels(image.pixels) : undefined,
      ]);
      return { features: vector, width: image.width, height: image.height, thumbnail };
    },

    async close() {
      if (extractor) await (await extractor.catch(() => undefined))?.close();
    },
  };
}
