/**
 * Moving one collection (a Discord server's images, index, models and the bot's settings rows for it) from one
 * machine's DATA_DIR to another's as a single file, for when a sharded bot's split between machines changes.
 *
 * The file: a first line `relevant-export 1`, a JSON header line (namespace, settings rows, the files and their
 * sizes), the files' bytes one after the other, and a JSON trailer line with each file's SHA-256 and the SHA-256 of
 * everything before the trailer. Files are streamed, never held whole in memory (a store of a million images is
 * gigabytes). Import writes into a temporary folder, verifies every checksum, and only then renames the folder into
 * place, so an interrupted or corrupted import leaves nothing behind.
 *
 * Both ends must be at rest: the bot serving the server is stopped while its data is exported or imported (a
 * reshard restarts every shard anyway). After an export the source folder keeps a MOVED marker, and the engine
 * refuses to open it, so a bot started with the old split cannot go on serving (and diverging from) moved data.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BotSettings } from './bot/settings.js';
import { AppError } from './errors.js';
import { MOVED_MARKER, namespaceDir, validateNamespaceName } from './index/namespace.js';

const MAGIC = 'relevant-export 1';

interface Header {
  namespace: string;
  created: string;
  settings: Array<[string, unknown]>;
  files: Array<{ path: string; size: number }>;
}

interface Trailer {
  files: Record<string, string>;
  total: string;
}

export interface MoveSummary {
  namespace: string;
  files: number;
  bytes: number;
  settings: number;
}

/** Every file of a namespace folder, relative paths with '/', except the SQLite shared-memory file and temp files. */
async function filesOf(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (at: string) => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const full = join(at, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile() && !entry.name.endsWith('-shm') && !/\.tmp-\d+-/.test(entry.name) && entry.name !== MOVED_MARKER) {
        out.push(relative(dir, full).split(sep).join('/'));
      }
    }
  };
  await walk(dir);
  return out.sort();
}

/** Writes one collection of `dataDir` to `file`, then marks its folder as moved. */
export async function exportNamespace(dataDir: string, name: string, file: string): Promise<MoveSummary> {
  const dir = namespaceDir(dataDir, validateNamespaceName(name));
  if (!existsSync(join(dir, 'store.sqlite'))) throw new AppError('NOT_FOUND', `There is no collection "${name}" in ${dataDir}.`);
  if (existsSync(join(dir, MOVED_MARKER))) throw new AppError('BUSY', `The collection "${name}" was already exported from ${dataDir}.`);
  const settings = await BotSettings.open(dataDir);
  const rows = await settings.guildEntries(name).finally(() => settings.close());
  const paths = await filesOf(dir);
  const header: Header = {
    namespace: name,
    created: new Date().toISOString(),
    settings: rows,
    files: await Promise.all(paths.map(async (path) => ({ path, size: (await stat(join(dir, path))).size }))),
  };
  const total = createHash('sha256');
  const out = createWriteStream(file);
  const write = (chunk: string | Buffer) =>
    new Promise<void>((resolve, reject) => {
      total.update(chunk);
      out.write(chunk, (error) => (error ? reject(error) : resolve()));
    });
  const trailer: Trailer = { files: {}, total: '' };
  try {
    await write(`${MAGIC}\n${JSON.stringify(header)}\n`);
    for (const { path, size } of header.files) {
      const hash = createHash('sha256');
      let written = 0;
      for await (const chunk of createReadStream(join(dir, path))) {
        hash.update(chunk as Buffer);
        written += (chunk as Buffer).length;
        await write(chunk as Buffer);
      }
      if (written !== size) throw new AppError('BUSY', `${path} changed while it was exported: stop the bot serving "${name}" and export again.`);
      trailer.files[path] = hash.digest('hex');
    }
    trailer.total = total.digest('hex');
    await new Promise<void>((resolve, reject) => out.end(`${JSON.stringify(trailer)}\n`, () => resolve()).once('error', reject));
  } catch (error) {
    out.destroy();
    await rm(file, { force: true });
    throw error;
  }
  await writeFile(join(dir, MOVED_MARKER), `${JSON.stringify({ to: file, at: header.created })}\n`);
  return { namespace: name, files: header.files.length, bytes: header.files.reduce((s, f) => s + f.size, 0), settings: rows.length };
}

/** Reads an export into `dataDir`: verified in a temporary folder, then renamed into place in one step. */
export async function importNamespace(dataDir: string, file: string): Promise<MoveSummary> {
  const handle = await open(file, 'r');
  let header: Header;
  let headerBytes: Buffer;
  try {
    // The header is one line; a generous first read holds it (a million settings rows would not fit, nor exist).
    const first = Buffer.alloc(4 * 1024 * 1024);
    const { bytesRead } = await handle.read(first, 0, first.length, 0);
    const text = first.subarray(0, bytesRead);
    const end1 = text.indexOf(10);
    const end2 = end1 < 0 ? -1 : text.indexOf(10, end1 + 1);
    if (end1 < 0 || end2 < 0 || text.subarray(0, end1).toString() !== MAGIC) throw notAnExport(file);
    headerBytes = text.subarray(0, end2 + 1);
    try {
      header = JSON.parse(text.subarray(end1 + 1, end2).toString()) as Header;
    } catch {
      throw notAnExport(file);
    }
  } finally {
    await handle.close();
  }
  const name = validateNamespaceName(header.namespace);
  const target = namespaceDir(dataDir, name);
  if (existsSync(target)) throw new AppError('BUSY', `${dataDir} already holds a collection "${name}"; remove its folder (${target}) first if it is to be replaced.`);
  for (const { path } of header.files) {
    if (path.startsWith('/') || path.split('/').includes('..')) throw notAnExport(file);
  }
  const staging = join(dataDir, 'namespaces', `.import-${name}.tmp-${process.pid}-0`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    const total = createHash('sha256').update(headerBytes);
    const hashes: Record<string, string> = {};
    let offset = headerBytes.length;
    for (const { path, size } of header.files) {
      await mkdir(dirname(join(staging, path)), { recursive: true });
      const hash = createHash('sha256');
      let read = 0;
      async function* counted(): AsyncGenerator<Buffer> {
        if (size === 0) return;
        for await (const chunk of createReadStream(file, { start: offset, end: offset + size - 1 })) {
          const bytes = chunk as Buffer;
          hash.update(bytes);
          total.update(bytes);
          read += bytes.length;
          yield bytes;
        }
      }
      await pipeline(counted(), createWriteStream(join(staging, path)));
      if (read !== size) throw corrupted(file, `${path} is cut short`);
      hashes[path] = hash.digest('hex');
      offset += size;
    }
    const rest = await readRest(file, offset);
    let trailer: Trailer;
    try {
      trailer = JSON.parse(rest.toString()) as Trailer;
    } catch {
      throw corrupted(file, 'its checksums are missing');
    }
    for (const [path, hash] of Object.entries(hashes)) if (trailer.files?.[path] !== hash) throw corrupted(file, `${path} does not match its checksum`);
    if (trailer.total !== total.digest('hex')) throw corrupted(file, 'its header does not match its checksum');
    const settings = await BotSettings.open(dataDir);
    await settings.restoreEntries(header.settings).finally(() => settings.close());
    await rename(staging, target);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  return { namespace: name, files: header.files.length, bytes: header.files.reduce((s, f) => s + f.size, 0), settings: header.settings.length };
}

async function readRest(file: string, offset: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of createReadStream(file, { start: offset })) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function notAnExport(file: string): AppError {
  return new AppError('CONFIG_INVALID', `${file} is not a collection export of this program.`);
}

function corrupted(file: string, why: string): AppError {
  return new AppError('STORE_FAILED', `${file} is damaged (${why}); nothing was imported. Export again.`);
}
