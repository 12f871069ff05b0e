import { resolve } from 'node:path';
import { bool, cleanEnv, num, str } from 'envalid';
import { AppError } from './errors.js';
import { LOG_LEVELS, type LogLevel } from './log.js';

/** Everything the engine's surfaces read from the environment; the only reader of process.env. */
export interface EngineConfig {
  dataDir: string;
  logLevel: LogLevel;
  threads: number;
  retrainPolicy: { minImages: number; growth: number } | false;
}

export function loadEngineConfig(env: NodeJS.ProcessEnv = process.env): EngineConfig {
  const parsed = cleanEnv(
    env,
    {
      DATA_DIR: str({ default: './data', desc: 'where stores, indexes and models are kept' }),
      LOG_LEVEL: str({ choices: [...LOG_LEVELS], default: 'info' }),
      INFERENCE_THREADS: num({ default: 1, desc: 'onnxruntime threads for MobileNetV2' }),
      AUTO_RETRAIN: bool({ default: true, desc: 'train a namespace VAE by itself once it has enough images' }),
      AUTO_RETRAIN_MIN_IMAGES: num({ default: 1000 }),
      AUTO_RETRAIN_GROWTH: num({ default: 2, desc: 'retrain again when the collection has grown by this factor' }),
    },
    { reporter: reportInvalid },
  );
  return {
    dataDir: resolve(parsed.DATA_DIR),
    logLevel: parsed.LOG_LEVEL as LogLevel,
    threads: Math.max(1, Math.floor(parsed.INFERENCE_THREADS)),
    retrainPolicy: parsed.AUTO_RETRAIN ? { minImages: parsed.AUTO_RETRAIN_MIN_IMAGES, growth: parsed.AUTO_RETRAIN_GROWTH } : false,
  };
}

function reportInvalid({ errors }: { errors: Partial<Record<string, Error>> }): void {
  const names = Object.keys(errors);
  if (names.length === 0) return;
  const detail = names.map((name) => `${name}: ${errors[name]?.message ?? 'invalid'}`).join('; ');
  throw new AppError('CONFIG_INVALID', `Invalid environment: ${detail}`);
}
