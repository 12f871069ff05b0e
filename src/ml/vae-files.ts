/** A VAE's two files (meta.json, weights.bin): atomic save, checked load. */
import { randomBytes } from 'node:crypto';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../errors.js';
import { sha256, syncDir, syncFile } from '../util/atomic-file.js';
import { INPUT_TRANSFORMS, withLegacyDefaults } from './vae-hyper.js';
import { VAE_FORMAT, VaeModel, weightLayout, type VaeMeta, type VaeWeights } from './vae-model.js';

const META_FILE = 'meta.json';
const WEIGHTS_FILE = 'weights.bin';

function invalid(dir: string, reason: string, cause?: unknown): AppError {
  return new AppError('MODEL_INVALID', `The relevance model in ${dir} cannot be used (${reason}). Retrain it.`, {
    cause,
    details: { dir, reason },
  });
}

function packWeights(model: VaeModel): Buffer {
  const layout = weightLayout(model.meta);
  const total = layout.reduce((sum, [, size]) => sum + size, 0);
  const packed = new Float32Array(total);
  let offset = 0;
  for (const [name, size] of layout) {
    packed.set(model.weights[name], offset);
    offset += size;
  }
  return Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes `dir/meta.json` and `dir/weights.bin` so that a reader sees either the old model or the new one,
 * never a mix: both files go to a sibling temp directory, are fsynced, and the directory is renamed into
 * place. An existing `dir` is moved aside to `dir.previous` first (rename cannot replace a non-empty
 * directory); a crash between those two renames leaves the old model there.
 */
export async function saveVae(model: VaeModel, dir: string): Promise<void> {
  const target = path.resolve(dir);
  const parent = path.dirname(target);
  await mkdir(parent, { recursive: true });
  const weights = packWeights(model);
  const meta: VaeMeta = { ...model.meta, weightsSha256: sha256(weights) };
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const previous = `${target}.previous`;
  try {
    await mkdir(tmp);
    await writeFile(path.join(tmp, WEIGHTS_FILE), weights);
    await writeFile(path.join(tmp, META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
    await syncFile(path.join(tmp, WEIGHTS_FILE));
    await syncFile(path.join(tmp, META_FILE));
    await syncDir(tmp);
    if (await exists(target)) {
      await rm(previous, { recursive: true, force: true });
      await rename(target, previous);
    }
    await rename(tmp, target);
    await syncDir(parent);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw new AppError('STORE_FAILED', `Could not save the relevance model to ${target}.`, { cause: error, details: { dir: target } });
  }
  await rm(previous, { recursive: true, force: true });
}

function checkMeta(value: unknown, dir: string): VaeMeta {
  if (typeof value !== 'object' || value === null) throw invalid(dir, 'meta.json is not an object');
  const meta = value as Partial<VaeMeta>;
  if (typeof meta.format !== 'number') throw invalid(dir, 'meta.json has no format');
  if (meta.format > VAE_FORMAT) {
    throw new AppError(
      'MODEL_INVALID',
      `The relevance model in ${dir} was saved by a newer version of this program (model format ${meta.format}, this version reads up to ${VAE_FORMAT}). Upgrade the program, or retrain the model with this version.`,
      { details: { dir, format: meta.format, supported: VAE_FORMAT } },
    );
  }
  if (meta.format !== VAE_FORMAT) throw invalid(dir, `unknown format ${meta.format}`);
  for (const key of ['inputDim', 'hiddenDim', 'latentDim'] as const) {
    const v = meta[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw invalid(dir, `meta.json has a bad ${key}`);
  }
  if (typeof meta.weightsSha256 !== 'string') throw invalid(dir, 'meta.json has no weights checksum');
  const hyper = meta.hyper;
  if (typeof hyper !== 'object' || hyper === null || !INPUT_TRANSFORMS.includes(hyper.inputTransform)) {
    throw invalid(dir, 'meta.json has bad hyperparameters');
  }
  if (hyper.latent !== meta.latentDim || hyper.hidden !== meta.hiddenDim) throw invalid(dir, 'meta.json dimensions disagree');
  return { ...meta, hyper: withLegacyDefaults(hyper) } as VaeMeta;
}

export async function loadVae(dir: string): Promise<VaeModel> {
  const target = path.resolve(dir);
  let metaText: string;
  let weights: Buffer;
  try {
    [metaText, weights] = await Promise.all([readFile(path.join(target, META_FILE), 'utf8'), readFile(path.join(target, WEIGHTS_FILE))]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new AppError('MODEL_MISSING', `No relevance model in ${target}. Train one first.`, { cause: error, details: { dir: target } });
    }
    throw invalid(target, 'its files cannot be read', error);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(metaText);
  } catch (error) {
    throw invalid(target, 'meta.json is not valid JSON', error);
  }
  const meta = checkMeta(parsed, target);
  if (sha256(weights) !== meta.weightsSha256) throw invalid(target, 'weights.bin checksum mismatch');
  const layout = weightLayout(meta);
  const total = layout.reduce((sum, [, size]) => sum + size, 0);
  if (weights.byteLength !== total * 4) throw invalid(target, `weights.bin holds ${weights.byteLength} bytes, expected ${total * 4}`);
  // Copied because a Buffer from readFile may sit at an offset that is not 4-byte aligned.
  const all = new Float32Array(total);
  new Uint8Array(all.buffer).set(weights);
  const arrays: Partial<VaeWeights> = {};
  let offset = 0;
  for (const [name, size] of layout) {
    arrays[name] = all.subarray(offset, offset + size);
    offset += size;
  }
  return new VaeModel(meta, arrays as VaeWeights);
}
