/**
 * A labelled image set for the relevance evaluation: a folder of class sub-folders, or a manifest.tsv of
 * `path<TAB>label[<TAB>coarse label]` with paths relative to the manifest (the shared openclipart build script
 * writes one).
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../errors.js';

export type LabelledImage = { path: string; label: string; coarse: string };

export type Dataset = { root: string; images: LabelledImage[] };

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.gif', '.webp', '.avif', '.tif', '.tiff']);

export function parseManifest(text: string, root: string): LabelledImage[] {
  const images: LabelledImage[] = [];
  for (const [i, line] of text.split(/\r?\n/).entries()) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const [file, label, coarse] = line.split('\t');
    if (!file || !label) {
      throw new AppError('CONFIG_INVALID', `manifest line ${i + 1} needs a path and a label separated by a tab.`, { details: { line } });
    }
    // Without a coarse label the fine label stands in, so coarse P@20 equals P@20 instead of being undefined.
    images.push({ path: path.resolve(root, file), label, coarse: coarse?.trim() || label });
  }
  return images;
}

async function listClassFolders(root: string): Promise<LabelledImage[]> {
  const images: LabelledImage[] = [];
  const classes = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  for (const label of classes) {
    const files = (await readdir(path.join(root, label))).filter((f) => IMAGE_EXTENSIONS.has(path.extname(f).toLowerCase())).sort();
    for (const file of files) images.push({ path: path.join(root, label, file), label, coarse: label });
  }
  return images;
}

/** `location` is a manifest.tsv, or a folder holding either a manifest.tsv or class sub-folders. */
export async function loadDataset(location: string): Promise<Dataset> {
  const resolved = path.resolve(location);
  let info;
  try {
    info = await stat(resolved);
  } catch (error) {
    throw new AppError('CONFIG_INVALID', `No dataset at ${resolved}.`, { cause: error });
  }
  const manifest = info.isDirectory() ? path.join(resolved, 'manifest.tsv') : resolved;
  const root = path.dirname(manifest);
  let images: LabelledImage[];
  try {
    images = parseManifest(await readFile(manifest, 'utf8'), root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !info.isDirectory()) throw error;
    images = await listClassFolders(resolved);
  }
  if (images.length < 2) throw new AppError('NOT_ENOUGH_DATA', `The dataset at ${resolved} holds fewer than two images.`);
  return { root: info.isDirectory() ? resolved : root, images };
}
